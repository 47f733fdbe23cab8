"""The files connector on local disk: formats, compression, options, bad rows, sink modes."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from headwater.connectors.base import SinkInput
from headwater.connectors.files.sink import FilesSink, FilesSinkConfig
from headwater.connectors.files.source import FilesSource, FilesSourceConfig
from headwater.errors import ConnectorError

CSV = "id,name,amount\n1,ann,10.5\n2,bob,20\n3,cyd,30.25\n"


def zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "sources").mkdir()
    (tmp_path / "sinks").mkdir()
    (tmp_path / "data").mkdir()
    return tmp_path


def put(root: Path, rel: str, data: str | bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        p.write_text(data, encoding="utf-8")
    else:
        p.write_bytes(data)
    return p


def source(root: Path, **config: Any) -> FilesSource:
    cfg = FilesSourceConfig.model_validate({"type": "files", **config})
    toml = root / "sources" / "raw.toml"
    toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()
                            if not isinstance(v, dict)))
    return FilesSource("raw", cfg, root, toml)


def rows(src: FilesSource) -> list[dict[str, Any]]:
    return sorted(src.read().read_all().to_pylist(), key=lambda r: tuple(map(str, r.values())))


# -- formats and options ------------------------------------------------------------------


def test_csv_glob_and_partitions(root: Path) -> None:
    put(root, "data/a.csv", CSV)
    put(root, "data/b.csv", "id,name,amount\n4,dee,1\n")
    src = source(root, path="data/*.csv")
    assert [r["id"] for r in rows(src)] == [1, 2, 3, 4]
    parts = src.partitions()
    assert [p for p, _ in parts] == ["data/a.csv", "data/b.csv"]
    fp = src.data_fingerprint()
    put(root, "data/b.csv", "id,name,amount\n4,dee,2\n")
    assert src.data_fingerprint() != fp

def test_csv_files_with_different_headers_are_matched_by_name(root: Path) -> None:
    """A column added from some day on (or dropped): every file's rows, by column name, as
    union_by_name gives for Parquet and JSON; a compressed file's header is read too."""
    put(root, "data/a.csv", "id,v\n1,10\n")
    put(root, "data/b.csv", "id,v,note\n2,20,x\n")
    put(root, "data/c.csv.gz", gzip.compress(b"v,id\n30,3\n"))
    got = rows(source(root, path="data/*.csv*", format="csv", columns={"id": "BIGINT"}))
    assert got == [{"id": 1, "v": 10, "note": None}, {"id": 2, "v": 20, "note": "x"},
                   {"id": 3, "v": 30, "note": None}]



@pytest.mark.parametrize("name,data,options", [
    ("data/t.tsv", CSV.replace(",", "\t"), {}),
    ("data/t.txt", CSV.replace(",", "\t"), {"format": "tsv"}),
    ("data/s.csv", CSV.replace(",", ";"), {"delimiter": ";"}),
    ("data/a.csv.gz", gzip.compress(CSV.encode()), {}),
    ("data/a.csv.zst", zstd(CSV.encode()), {}),
    ("data/a.gzipped", gzip.compress(CSV.encode()), {"format": "csv", "compression": "gzip"}),
    ("data/a.ndjson", "".join(json.dumps(r) + "\n" for r in [
        {"id": 1, "name": "ann", "amount": 10.5}, {"id": 2, "name": "bob", "amount": 20},
        {"id": 3, "name": "cyd", "amount": 30.25}]), {}),
    ("data/a.jsonl.gz", gzip.compress(b'{"id":1,"name":"ann","amount":10.5}\n'
                                      b'{"id":2,"name":"bob","amount":20}\n'
                                      b'{"id":3,"name":"cyd","amount":30.25}\n'), {}),
    ("data/a.json", json.dumps([{"id": 1, "name": "ann", "amount": 10.5},
                                {"id": 2, "name": "bob", "amount": 20},
                                {"id": 3, "name": "cyd", "amount": 30.25}]), {}),
    ("data/a.ndjson.zst", zstd(b'{"id":1,"name":"ann","amount":10.5}\n'
                               b'{"id":2,"name":"bob","amount":20}\n'
                               b'{"id":3,"name":"cyd","amount":30.25}\n'), {}),
])
def test_formats_and_compression(root: Path, name: str, data: str | bytes,
                                 options: dict[str, Any]) -> None:
    put(root, name, data)
    got = rows(source(root, path=name, **options))
    assert [(r["id"], r["name"], float(r["amount"])) for r in got] == [
        (1, "ann", 10.5), (2, "bob", 20.0), (3, "cyd", 30.25)]


def test_parquet(root: Path) -> None:
    pq.write_table(pa.table({"id": [1, 2], "v": ["a", "b"]}), root / "data/p1.parquet")
    pq.write_table(pa.table({"id": [3], "v": ["c"], "extra": [True]}), root / "data/p2.parquet")
    got = rows(source(root, path="data/*.parquet"))
    assert got == [{"id": 1, "v": "a", "extra": None}, {"id": 2, "v": "b", "extra": None},
                   {"id": 3, "v": "c", "extra": True}]


def test_header_encoding_dates_and_type_overrides(root: Path) -> None:
    text = "1;Zoë;02/01/2024;2024/01/02 10:00;007\n2;Ünïcode €;03/01/2024;2024/01/03 11:30;010\n"
    put(root, "data/x.csv", text.encode("cp1252"))
    src = source(root, path="data/x.csv", header=False, delimiter=";", encoding="cp1252",
                 date_format="%d/%m/%Y", timestamp_format="%Y/%m/%d %H:%M",
                 columns={"column4": "VARCHAR", "column0": "SMALLINT"})
    table = src.read().read_all()
    assert table.schema.field("column0").type == pa.int16()
    got = sorted(table.to_pylist(), key=lambda r: r["column0"])
    assert got[0] == {"column0": 1, "column1": "Zoë", "column2": date(2024, 1, 2),
                      "column3": datetime(2024, 1, 2, 10, 0), "column4": "007"}
    assert got[1]["column1"] == "Ünïcode €"


def test_latin1_is_read_by_duckdb_itself(root: Path) -> None:
    put(root, "data/l.csv", "id,name\n1,Zoë\n".encode("latin-1"))
    assert rows(source(root, path="data/l.csv", encoding="latin-1")) == [{"id": 1, "name": "Zoë"}]


def test_type_overrides_on_ndjson(root: Path) -> None:
    put(root, "data/a.ndjson", '{"id": 1, "code": 7}\n{"id": 2, "code": 8}\n')
    table = source(root, path="data/a.ndjson", columns={"code": "VARCHAR"}).read().read_all()
    assert table.column("code").to_pylist() == ["7", "8"]


def test_bad_type_and_unknown_column_in_columns(root: Path) -> None:
    put(root, "data/a.csv", CSV)
    with pytest.raises(ConnectorError) as err:
        source(root, path="data/a.csv", columns={"id": "INT); DROP TABLE x; --"}).read()
    assert "is not a type" in err.value.message
    with pytest.raises(ConnectorError) as err:
        source(root, path="data/a.csv", columns={"nope": "INT"}).read()
    assert "nope" in err.value.message and "id, name, amount" in (err.value.hint or "")


def test_no_files_and_unknown_format(root: Path) -> None:
    with pytest.raises(ConnectorError, match="matches no files"):
        source(root, path="data/*.csv").read()
    put(root, "data/a.xyz", "1")
    with pytest.raises(ConnectorError, match="cannot tell the format"):
        source(root, path="data/a.xyz").read()


# -- bad rows -----------------------------------------------------------------------------

BAD_CSV = "id,v,d\n1,10,2024-01-02\n2,x,2024-01-03\n3,30,2024-01-04,extra\n4,40,2024-01-05\n"


def test_bad_csv_line_fails_naming_file_and_line(root: Path) -> None:
    put(root, "data/good.csv", "id,v,d\n9,90,2024-01-09\n")
    put(root, "data/z_bad.csv", BAD_CSV)
    src = source(root, path="data/*.csv", columns={"v": "BIGINT"})
    with pytest.raises(ConnectorError) as err:
        src.read().read_all()
    e = err.value
    assert e.path == root / "data/z_bad.csv" and e.line == 3
    assert "data/z_bad.csv line 3" in e.message and "x" in (e.snippet or "")
    assert 'on_bad_rows = "quarantine"' in (e.hint or "")
    assert src.stream_error is e


def test_too_many_columns_is_a_bad_line_not_a_one_column_table(root: Path) -> None:
    put(root, "data/b.csv", "id,v\n1,10\n2,20,oops\n3,30\n")
    with pytest.raises(ConnectorError) as err:
        source(root, path="data/b.csv").read().read_all()
    assert err.value.line == 3 and "Expected Number of Columns" in err.value.message


def test_quarantine_skips_bad_csv_lines_into_rejects(root: Path) -> None:
    put(root, "data/a.csv.gz", gzip.compress(BAD_CSV.encode()))
    src = source(root, path="data/a.csv.gz", on_bad_rows="quarantine", columns={"v": "BIGINT"})
    assert src.rejects() is None
    table = src.read().read_all()
    assert sorted(table.column("id").to_pylist()) == [1, 4]
    rejects = src.rejects()
    assert rejects is not None and rejects.schema.names == ["location", "reason", "raw"]
    got = rejects.to_pylist()
    assert [r["location"] for r in got] == ["data/a.csv.gz:3", "data/a.csv.gz:4"]
    assert "Could not convert string \"x\"" in got[0]["reason"]
    assert got[1]["raw"] == "3,30,2024-01-04,extra"


def test_ndjson_bad_lines_fail_or_are_quarantined(root: Path) -> None:
    put(root, "data/e.ndjson", '{"a": 1}\n\n{"a": 2, oops\n[1, 2]\n{"a": 3}\n')
    with pytest.raises(ConnectorError) as err:
        source(root, path="data/e.ndjson").read().read_all()
    assert err.value.line == 3 and "invalid JSON" in err.value.message
    src = source(root, path="data/e.ndjson", on_bad_rows="quarantine")
    table = src.read().read_all()
    assert sorted(table.column("a").to_pylist()) == [1, 3]
    got = src.rejects()
    assert got is not None
    assert [(r["location"], r["raw"]) for r in got.to_pylist()] == [
        ("data/e.ndjson:3", '{"a": 2, oops'), ("data/e.ndjson:4", "[1, 2]")]


def test_undecodable_file_hints_at_encoding(root: Path) -> None:
    put(root, "data/w.csv", "id,name\n1,Zoë\n".encode("cp1252"))
    with pytest.raises(ConnectorError) as err:
        source(root, path="data/w.csv").read().read_all()
    assert "encoding" in (err.value.hint or "")


# -- sink ---------------------------------------------------------------------------------

ORDERS = pa.table({
    "id": [1, 2, 3, 4, 5],
    "country": ["fr", "de", "fr", None, "a/b"],
    "amount": [1.5, 2.0, 3.25, 4.0, 5.0],
    "at": pa.array([datetime(2024, 1, d) for d in range(1, 6)], pa.timestamp("us")),
})


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    from headwater.engines.duckdb import DuckDBEngine

    eng = DuckDBEngine(tmp_path / "w.duckdb")
    eng.open()
    eng.build_arrow("orders_v1", ORDERS)
    yield eng
    eng.close()


def sink(root: Path, **config: Any) -> FilesSink:
    cfg = FilesSinkConfig.model_validate({"type": "files", "from": "orders", **config})
    toml = root / "sinks" / "out.toml"
    toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()))
    return FilesSink("out", cfg, root, toml)


def data(engine: Any, physical: str = "orders_v1",
         previous: dict[str, str] | None = None) -> SinkInput:
    return SinkInput(engine, physical, "orders", previous_partitions=previous or {})


@pytest.mark.parametrize("name", ["out/o.parquet", "out/o.csv", "out/o.ndjson"])
def test_single_file_sink_formats(root: Path, engine: Any, name: str) -> None:
    result = sink(root, path=name).write(data(engine))
    assert result.rows == 5 and result.partitions is None
    target = root / name
    if name.endswith(".parquet"):
        assert pq.read_table(target).to_pylist() == ORDERS.to_pylist()
    elif name.endswith(".csv"):
        assert target.read_text().splitlines()[0] == '"id","country","amount","at"'
    else:
        lines = [json.loads(x) for x in target.read_text().splitlines()]
        assert lines[0] == {"id": 1, "country": "fr", "amount": 1.5, "at": "2024-01-01 00:00:00"}
        assert len(lines) == 5
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left


def test_partitioned_sink_writes_hive_folders(root: Path, engine: Any) -> None:
    result = sink(root, path="out/orders", partition_by="country").write(data(engine))
    base = root / "out/orders"
    folders = sorted(p.name for p in base.iterdir())
    assert folders == ["country=__HIVE_DEFAULT_PARTITION__", "country=a%2Fb", "country=de",
                       "country=fr"]
    assert result.rows == 5
    assert result.partitions is not None and set(result.partitions) == {
        "fr", "de", "a/b", "__HIVE_DEFAULT_PARTITION__"}
    fr = pq.read_table(base / "country=fr/part.parquet")
    assert fr.schema.names == ["id", "amount", "at"]  # the partition column is in the path
    assert sorted(fr.column("id").to_pylist()) == [1, 3]
    # DuckDB reads it back with the partition column restored
    import duckdb

    back = duckdb.sql(
        f"SELECT id, country FROM read_parquet('{base}/*/part.parquet', hive_partitioning=true)"
        " ORDER BY id").fetchall()
    assert back == [(1, "fr"), (2, "de"), (3, "fr"), (4, None), (5, "a/b")]


def test_sync_mode_rewrites_only_changed_partitions_and_deletes_vanished(
    root: Path, engine: Any
) -> None:
    out = sink(root, path="out/orders", partition_by="country", mode="sync", format="ndjson")
    first = out.write(data(engine))
    assert first.rows == 5 and first.partitions
    base = root / "out/orders"
    mtimes = {p.parent.name: p.stat().st_mtime_ns for p in base.glob("*/part.ndjson")}

    # new version: fr changes, de unchanged, "a/b" and NULL vanish, "es" is new
    v2 = pa.table({"id": [1, 2, 3, 6], "country": ["fr", "de", "fr", "es"],
                   "amount": [1.5, 2.0, 9.0, 6.0],
                   "at": pa.array([datetime(2024, 1, d) for d in (1, 2, 3, 6)],
                                  pa.timestamp("us"))})
    engine.build_arrow("orders_v2", v2)
    second = out.write(data(engine, "orders_v2", previous=first.partitions))
    assert second.rows == 3  # fr (2 rows) and es (1 row); de untouched
    assert second.partitions == engine.partition_fingerprints("orders_v2", "country")
    names = sorted(p.parent.name for p in base.glob("*/part.ndjson"))
    assert names == ["country=de", "country=es", "country=fr"]
    assert (base / "country=de/part.ndjson").stat().st_mtime_ns == mtimes["country=de"]
    assert not (base / "country=a%2Fb").exists()
    fr = [json.loads(x) for x in (base / "country=fr/part.ndjson").read_text().splitlines()]
    assert sorted(r["amount"] for r in fr) == [1.5, 9.0]

    # a partition file deleted by hand is written again even though unchanged
    (base / "country=de/part.ndjson").unlink()
    third = out.write(data(engine, "orders_v2", previous=second.partitions))
    assert third.rows == 1 and (base / "country=de/part.ndjson").exists()


def test_overwrite_mode_rewrites_everything(root: Path, engine: Any) -> None:
    out = sink(root, path="out/orders", partition_by="country", format="csv")
    first = out.write(data(engine))
    again = out.write(data(engine, previous=first.partitions))
    assert again.rows == 5


def test_sink_config_errors(root: Path, engine: Any) -> None:
    with pytest.raises(ValidationError, match="partition_by"):
        FilesSinkConfig.model_validate({"type": "files", "from": "x", "path": "o",
                                        "mode": "sync"})
    with pytest.raises(ConnectorError, match="partition_by column 'nope'"):
        sink(root, path="out/x", partition_by="nope").write(data(engine))


# -- end to end through `headwater run` ---------------------------------------------------


def test_run_quarantines_bad_rows_into_a_rejected_table(tmp_path: Path) -> None:
    from headwater import Project
    from headwater.testing import write_project

    root = write_project(tmp_path / "p", {
        "data/a.csv": BAD_CSV,
        "sources/raw.toml": 'type = "files"\npath = "data/*.csv"\non_bad_rows = "quarantine"\n'
                            'columns = { v = "BIGINT" }\n',
        "transforms/total.sql": "SELECT sum(v) AS s FROM raw\n",
    })
    project = Project(root)
    result = project.run()
    assert result.ok, [(n.name, n.status, n.error) for n in result.nodes]
    assert project.table("total").to_pylist() == [{"s": 50}]
    raw = next(n for n in result.nodes if n.name == "raw")
    assert any("2 bad row(s) quarantined" in w for w in raw.warnings)


def test_run_fails_on_a_bad_row_naming_file_and_line(tmp_path: Path) -> None:
    from headwater import Project
    from headwater.testing import write_project

    root = write_project(tmp_path / "p", {
        "data/a.csv": BAD_CSV,
        "sources/raw.toml": 'type = "files"\npath = "data/*.csv"\ncolumns = { v = "BIGINT" }\n',
        "transforms/total.sql": "SELECT sum(v) AS s FROM raw\n",
    })
    result = Project(root).run()
    assert not result.ok
    failed = next(n for n in result.nodes if n.name == "raw")
    assert failed.status == "failed"
    assert "data/a.csv line 3" in (failed.error or "")
