"""The files connector against a real S3 API (moto's server on 127.0.0.1)."""

from __future__ import annotations

import gzip
import io
import json
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headwater.connectors.base import SinkInput
from headwater.connectors.files.sink import FilesSink, FilesSinkConfig
from headwater.connectors.files.source import FilesSource, FilesSourceConfig
from headwater.connectors.s3 import glob_regex
from headwater.errors import ConnectorError

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

KEY_ID = "hwtestkeyid"
SECRET = "hw-test-secret-value-123"


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def client(endpoint: str) -> Any:
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                        config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"hw-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "sources").mkdir()
    (tmp_path / "sinks").mkdir()
    return tmp_path


def source(root: Path, endpoint: str, **config: Any) -> FilesSource:
    config.setdefault("endpoint_url", endpoint)
    cfg = FilesSourceConfig.model_validate({"type": "files", **config})
    toml = root / "sources" / "raw.toml"
    toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()
                            if not isinstance(v, dict)))
    return FilesSource("raw", cfg, root, toml)


def sink(root: Path, endpoint: str, **config: Any) -> FilesSink:
    config.setdefault("endpoint_url", endpoint)
    cfg = FilesSinkConfig.model_validate({"type": "files", "from": "orders", **config})
    toml = root / "sinks" / "out.toml"
    toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()))
    return FilesSink("out", cfg, root, toml)


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def ids(src: FilesSource) -> list[int]:
    return sorted(src.read().read_all().column("id").to_pylist())


# -- reading ------------------------------------------------------------------------------


def test_glob_reads_matching_objects_with_etags_as_partitions(
    root: Path, endpoint: str, client: Any, bucket: str
) -> None:
    client.put_object(Bucket=bucket, Key="data/a.csv", Body=b"id,v\n1,x\n2,y\n")
    client.put_object(Bucket=bucket, Key="data/b.csv", Body=b"id,v\n3,z\n")
    client.put_object(Bucket=bucket, Key="data/sub/c.csv", Body=b"id,v\n4,w\n")
    client.put_object(Bucket=bucket, Key="data/notes.txt", Body=b"hello")
    src = source(root, endpoint, path=f"s3://{bucket}/data/*.csv")
    assert ids(src) == [1, 2, 3]
    parts = src.partitions()
    assert [u for u, _ in parts] == [f"s3://{bucket}/data/a.csv", f"s3://{bucket}/data/b.csv"]
    etag = client.head_object(Bucket=bucket, Key="data/a.csv")["ETag"].strip('"')
    assert parts[0][1] == etag
    # ** crosses folders
    assert ids(source(root, endpoint, path=f"s3://{bucket}/data/**/*.csv")) == [1, 2, 3, 4]

    fp = src.data_fingerprint()
    assert src.data_fingerprint() == fp
    client.put_object(Bucket=bucket, Key="data/b.csv", Body=b"id,v\n3,z\n5,q\n")
    assert src.data_fingerprint() != fp
    assert ids(src) == [1, 2, 3, 5]


def test_parquet_and_gzipped_ndjson(root: Path, endpoint: str, client: Any, bucket: str) -> None:
    client.put_object(Bucket=bucket, Key="p/1.parquet",
                      Body=parquet_bytes(pa.table({"id": [1, 2], "v": ["a", "b"]})))
    client.put_object(Bucket=bucket, Key="p/2.parquet",
                      Body=parquet_bytes(pa.table({"id": [3], "v": ["c"]})))
    assert ids(source(root, endpoint, path=f"s3://{bucket}/p/*.parquet")) == [1, 2, 3]
    lines = b"".join(json.dumps({"id": i, "nested": {"k": i}}).encode() + b"\n"
                     for i in range(5))
    client.put_object(Bucket=bucket, Key="events/2024-01-01.ndjson.gz", Body=gzip.compress(lines))
    table = source(root, endpoint, path=f"s3://{bucket}/events/").read().read_all()
    assert sorted(table.column("id").to_pylist()) == [0, 1, 2, 3, 4]
    assert pa.types.is_struct(table.schema.field("nested").type)


def test_quarantine_names_the_object_and_line(
    root: Path, endpoint: str, client: Any, bucket: str
) -> None:
    client.put_object(Bucket=bucket, Key="d/a.csv", Body=b"id,v\n1,10\n2,ten\n3,30\n")
    url = f"s3://{bucket}/d/a.csv"
    src = source(root, endpoint, path=url, on_bad_rows="quarantine", columns={"v": "BIGINT"})
    assert ids(src) == [1, 3]
    rejects = src.rejects()
    assert rejects is not None
    assert [r["location"] for r in rejects.to_pylist()] == [f"{url}:3"]
    with pytest.raises(ConnectorError) as err:
        source(root, endpoint, path=url, columns={"v": "BIGINT"}).read().read_all()
    assert f"{url} line 3" in err.value.message


def test_credentials_from_named_env_vars(
    root: Path, endpoint: str, client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.put_object(Bucket=bucket, Key="a.csv", Body=b"id\n7\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConnectorError, match="no S3 credentials"):
        source(root, endpoint, path=f"s3://{bucket}/a.csv").read()
    monkeypatch.setenv("MY_KEY", KEY_ID)
    monkeypatch.setenv("MY_SECRET", SECRET)
    src = source(root, endpoint, path=f"s3://{bucket}/a.csv", access_key_id="${MY_KEY}",
                 secret_access_key="${MY_SECRET}", region="eu-west-1")
    assert ids(src) == [7]
    assert SECRET not in json.dumps(src.describe())


def test_a_literal_secret_in_the_config_is_refused(
    root: Path, endpoint: str, bucket: str
) -> None:
    src = source(root, endpoint, path=f"s3://{bucket}/a.csv", access_key_id=KEY_ID,
                 secret_access_key="literal-secret-in-toml")
    with pytest.raises(ConnectorError) as err:
        src.read()
    text = err.value.render()
    assert "must name an environment variable" in text
    assert "literal-secret-in-toml" not in err.value.message
    assert "literal-secret-in-toml" not in json.dumps(src.describe())


def test_missing_bucket_is_a_clear_error(root: Path, endpoint: str) -> None:
    with pytest.raises(ConnectorError) as err:
        source(root, endpoint, path="s3://no-such-bucket-hw/data/*.csv").read()
    assert "bucket 'no-such-bucket-hw' does not exist" in err.value.message
    assert not err.value.transient
    assert SECRET not in err.value.render() and KEY_ID not in err.value.render()


def test_no_matching_objects_lists_what_is_there(
    root: Path, endpoint: str, client: Any, bucket: str
) -> None:
    client.put_object(Bucket=bucket, Key="data/a.tsv", Body=b"id\n1\n")
    with pytest.raises(ConnectorError) as err:
        source(root, endpoint, path=f"s3://{bucket}/data/*.csv").read()
    assert "matches no objects" in err.value.message
    assert "data/a.tsv" in (err.value.hint or "")


def test_unreachable_endpoint_is_transient_and_has_no_secret(root: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = source(root, f"http://hwuser:hwpass@127.0.0.1:{port}", path="s3://b/data/*.csv")
    with pytest.raises(ConnectorError) as err:
        src.read()
    text = err.value.render()
    assert err.value.transient and "cannot connect" in text
    assert f"127.0.0.1:{port}" in text
    assert SECRET not in text and KEY_ID not in text and "hwpass" not in text


def test_glob_semantics() -> None:
    rx = glob_regex("data/*.csv")
    assert rx.match("data/a.csv") and not rx.match("data/x/a.csv")
    assert glob_regex("data/**/*.csv").match("data/a.csv")
    assert glob_regex("data/**/*.csv").match("data/x/y/a.csv")
    assert glob_regex("d/[!ab]?.csv").match("d/cz.csv") and not glob_regex("d/[!ab].csv").match(
        "d/a.csv")


# -- writing ------------------------------------------------------------------------------

ORDERS = pa.table({"id": [1, 2, 3, 4], "country": ["fr", "de", "fr", "es"],
                   "amount": [1.0, 2.0, 3.0, 4.0]})


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    from headwater.engines.duckdb import DuckDBEngine

    eng = DuckDBEngine(tmp_path / "w.duckdb")
    eng.open()
    eng.build_arrow("orders_v1", ORDERS)
    yield eng
    eng.close()


def keys(client: Any, bucket: str, prefix: str = "") -> list[str]:
    resp = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def test_sink_writes_one_object(
    root: Path, endpoint: str, client: Any, bucket: str, engine: Any
) -> None:
    out = sink(root, endpoint, path=f"s3://{bucket}/exports/orders.parquet")
    assert out.write(SinkInput(engine, "orders_v1", "orders")).rows == 4
    body = client.get_object(Bucket=bucket, Key="exports/orders.parquet")["Body"].read()
    assert pq.read_table(io.BytesIO(body)).to_pylist() == ORDERS.to_pylist()
    out = sink(root, endpoint, path=f"s3://{bucket}/exports/orders.ndjson")
    out.write(SinkInput(engine, "orders_v1", "orders"))
    text = client.get_object(Bucket=bucket, Key="exports/orders.ndjson")["Body"].read()
    assert len(text.decode().splitlines()) == 4
    # and the files source reads it back
    assert ids(source(root, endpoint, path=f"s3://{bucket}/exports/*.parquet")) == [1, 2, 3, 4]


def test_sink_partitioned_sync_on_s3(
    root: Path, endpoint: str, client: Any, bucket: str, engine: Any
) -> None:
    out = sink(root, endpoint, path=f"s3://{bucket}/lake/orders", partition_by="country",
               mode="sync")
    uploads: list[str] = []
    real_upload = out.s3().upload

    def spy(src: Path, url: str) -> None:
        uploads.append(url)
        real_upload(src, url)

    out.s3().upload = spy  # type: ignore[method-assign]
    first = out.write(SinkInput(engine, "orders_v1", "orders"))
    assert first.rows == 4
    assert keys(client, bucket) == ["lake/orders/country=de/part.parquet",
                                    "lake/orders/country=es/part.parquet",
                                    "lake/orders/country=fr/part.parquet"]
    v2 = pa.table({"id": [1, 2, 3], "country": ["fr", "de", "fr"], "amount": [1.0, 2.5, 3.0]})
    engine.build_arrow("orders_v2", v2)
    uploads.clear()
    second = out.write(SinkInput(engine, "orders_v2", "orders",
                                 previous_partitions=first.partitions or {}))
    assert uploads == [f"s3://{bucket}/lake/orders/country=de/part.parquet"]
    assert second.rows == 1
    assert keys(client, bucket) == ["lake/orders/country=de/part.parquet",
                                    "lake/orders/country=fr/part.parquet"]
    # the whole lake reads back through the files source
    assert ids(source(root, endpoint, path=f"s3://{bucket}/lake/orders/**/*.parquet")) == [1, 2, 3]


def test_sink_to_a_missing_bucket(root: Path, endpoint: str, engine: Any) -> None:
    out = sink(root, endpoint, path="s3://no-such-bucket-hw/o.parquet")
    with pytest.raises(ConnectorError) as err:
        out.write(SinkInput(engine, "orders_v1", "orders"))
    assert "bucket 'no-such-bucket-hw' does not exist" in err.value.message
    assert not err.value.transient
