"""S3 (and S3-compatible: MinIO, Ceph, moto ...) object access for the files connector.

DuckDB's ``httpfs`` extension cannot be downloaded on an offline machine, so
objects travel through boto3: a source lists the objects matching a glob and
downloads them to a temporary folder that DuckDB then reads; a sink writes a
local temporary file and uploads it (an S3 put is atomic per object).

Credentials come from the environment only: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``), or keys such as
``access_key_id = "${MY_KEY}"`` that name environment variables. boto3's own
credential chain (profiles, instance metadata) is never consulted, so a run
does exactly what its environment says and never probes the network for keys.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from headwater.core.config import StrictModel, resolve_env
from headwater.errors import ConnectorError

_ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_CREDENTIAL_KEYS = ("access_key_id", "secret_access_key", "session_token")
_TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
    "InternalError", "ServiceUnavailable", "503", "500", "502", "504",
    # the object changed or vanished between listing and reading: a retry lists again
    "PreconditionFailed", "NoSuchKey", "412",
}
_AUTH_CODES = {
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "403",
}


class S3Settings(StrictModel):
    """Keys the files connector accepts for ``s3://`` paths."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None


def mask_credentials(shown: dict[str, object]) -> dict[str, object]:
    """``describe()`` output with any credential that is not a ``${VAR}`` reference masked."""
    for key in _CREDENTIAL_KEYS:
        value = shown.get(key)
        if isinstance(value, str) and not _ENV_REF.search(value):
            shown[key] = "***"
    return shown


def is_s3(path: str) -> bool:
    return path.startswith("s3://")


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``."""
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key


def has_magic(key: str) -> bool:
    return any(c in key for c in "*?[")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over object keys, with the local glob's meaning.

    ``*`` and ``?`` do not cross ``/``; ``**`` matches any number of folders
    (``data/**/*.csv`` finds ``data/x.csv`` and ``data/a/b/x.csv``); ``[abc]``
    and ``[!abc]`` are character classes.
    """
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            j = pattern.find("]", j)
            if j < 0:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1:j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    etag: str
    size: int

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class S3:
    """A boto3 S3 client for one connector, with errors that name the object and no secret.

    ``who`` is how errors start (``source 'events'``); ``config_path`` is the
    TOML file that configures the connector.
    """

    def __init__(self, settings: S3Settings, *, who: str, config_path: Path) -> None:
        self.settings = settings
        self.who = who
        self.config_path = config_path
        self._secrets: list[str] = []
        self._client: Any = None

    # -- set-up ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The endpoint, fit to show (no user:password part)."""
        raw = self.settings.endpoint_url
        if not raw:
            return "AWS S3"
        parts = urlsplit(resolve_env(raw, path=self.config_path, key="endpoint_url"))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    def _credential(self, key: str, env_var: str) -> str | None:
        raw = getattr(self.settings, key)
        if raw is None:
            value = os.environ.get(env_var)
        else:
            if not _ENV_REF.search(raw):
                from headwater.core.config import key_position
                from headwater.errors import caret_snippet

                text = _read(self.config_path)
                line, col = key_position(text, key) if text else (None, None)
                raise ConnectorError(
                    f"{self.who}: {key} must name an environment variable, not hold the secret",
                    path=self.config_path,
                    line=line,
                    column=col,
                    snippet=caret_snippet(text, line, col) if line else None,
                    hint=f'write {key} = "${{MY_VAR}}" and export MY_VAR=... before running; '
                    "secrets never go in project files",
                )
            value = resolve_env(raw, path=self.config_path, key=key)
        if value:
            self._secrets.append(value)
        return value or None

    @property
    def client(self) -> Any:
        if self._client is not None:
            return self._client
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ConnectorError(
                f"{self.who}: reading or writing s3:// paths needs boto3",
                path=self.config_path,
                hint="pip install 'headwater[s3]'",
            ) from None
        key_id = self._credential("access_key_id", "AWS_ACCESS_KEY_ID")
        secret = self._credential("secret_access_key", "AWS_SECRET_ACCESS_KEY")
        token = self._credential("session_token", "AWS_SESSION_TOKEN")
        if not key_id or not secret:
            raise ConnectorError(
                f"{self.who}: no S3 credentials in the environment",
                path=self.config_path,
                hint="export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or set "
                'access_key_id = "${MY_KEY_ID}" and secret_access_key = "${MY_SECRET}"',
            )
        endpoint = self.settings.endpoint_url
        endpoint_url = resolve_env(endpoint, path=self.config_path, key="endpoint_url") \
            if endpoint else None
        region = (
            self.settings.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        config = Config(
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 2, "mode": "standard"},
            # S3-compatible servers on a host:port want path-style addressing
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        session = boto3.session.Session()
        self._client = session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=config,
        )
        return self._client

    # -- errors ---------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        from headwater.core import secrets

        for s in sorted(self._secrets, key=len, reverse=True):
            if len(s) >= secrets.MIN_LENGTH:
                text = text.replace(s, "***")
        return secrets.redact(text)

    @contextmanager
    def errors(self, action: str, url: str) -> Iterator[None]:
        """Turn boto3/botocore failures of ``action`` on ``url`` into ConnectorErrors."""
        from headwater.errors import HeadwaterError

        try:
            yield
        except HeadwaterError:  # already says what is wrong (an unset ${VAR} ...)
            raise
        except Exception as exc:
            raise self._error(exc, action, url) from None

    def _error(self, exc: Exception, action: str, url: str) -> ConnectorError:
        try:
            from botocore import exceptions as bx
        except ImportError:  # pragma: no cover - boto3 present if we got here
            return ConnectorError(f"{self.who}: cannot {action} {url}: {exc}")
        where = f"{self.who}: cannot {action} {url}"
        inner = exc.__cause__ or exc.__context__
        if not isinstance(exc, bx.ClientError) and isinstance(inner, bx.ClientError):
            exc = inner  # boto3's upload_file wraps the ClientError that says what went wrong
        if isinstance(exc, bx.ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = self.redact(str(err.get("Message") or code))
            if code == "NoSuchBucket" or (code == "404" and action.startswith("list")):
                bucket = split_url(url)[0]
                return ConnectorError(
                    f"{where}: bucket {bucket!r} does not exist (at {self.endpoint})",
                    path=self.config_path,
                    hint="check the bucket name in path, and endpoint_url/region",
                )
            if code in _AUTH_CODES:
                return ConnectorError(
                    f"{where}: access denied ({code}: {message})",
                    path=self.config_path,
                    hint="check the credentials in the environment (AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY or the variables that access_key_id and "
                    "secret_access_key name) and the bucket's permissions",
                )
            transient = code in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500)
            return ConnectorError(
                f"{where}: {code or status}: {message}", transient=transient, path=self.config_path
            )
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError):
            return ConnectorError(
                f"{where}: cannot connect to {self.endpoint}",
                transient=True,
                path=self.config_path,
                hint="check endpoint_url and that the S3 service is running and reachable",
            )
        if isinstance(exc, bx.ConnectTimeoutError | bx.ReadTimeoutError):
            return ConnectorError(
                f"{where}: {self.endpoint} timed out", transient=True, path=self.config_path
            )
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return ConnectorError(
                f"{where}: incomplete S3 credentials",
                path=self.config_path,
                hint="export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
        if isinstance(exc, bx.BotoCoreError):
            return ConnectorError(
                f"{where}: {self.redact(str(exc))}", transient=True, path=self.config_path
            )
        if isinstance(exc, OSError):
            return ConnectorError(
                f"{where}: {exc.strerror or exc}", transient=True, path=self.config_path
            )
        return ConnectorError(
            f"{where}: {type(exc).__name__}: {self.redact(str(exc))}", path=self.config_path
        )

    # -- operations -----------------------------------------------------------------------

    def list_prefix(self, bucket: str, prefix: str) -> Iterator[S3Object]:
        url = f"s3://{bucket}/{prefix}"
        with self.errors("list", url):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for o in page.get("Contents", []):
                    yield S3Object(bucket, o["Key"], str(o.get("ETag", "")).strip('"'),
                                   int(o.get("Size", 0)))

    def glob(self, url: str) -> list[S3Object]:
        """The objects whose URL matches ``url`` (a glob, a key, or a prefix ending in /)."""
        bucket, key = split_url(url)
        if not key or key.endswith("/"):
            key += "**"
        if not has_magic(key):
            return [o for o in self.list_prefix(bucket, key) if o.key == key]
        cut = min(key.index(c) for c in "*?[" if c in key)
        prefix = key[:cut]
        rx = glob_regex(key)
        return sorted(
            (o for o in self.list_prefix(bucket, prefix) if rx.match(o.key)
             and not o.key.endswith("/")),
            key=lambda o: o.key,
        )

    def download(self, obj: S3Object, dest: Path) -> None:
        """Stream ``obj`` into ``dest``; fails (transiently) if it changed since listing."""
        with self.errors("read", obj.url):
            extra = {"IfMatch": f'"{obj.etag}"'} if obj.etag else {}
            resp = self.client.get_object(Bucket=obj.bucket, Key=obj.key, **extra)
            body = resp["Body"]
            try:
                with open(dest, "wb") as f:
                    shutil.copyfileobj(body, f, 1 << 20)
            finally:
                body.close()

    def upload(self, src: Path, url: str) -> None:
        bucket, key = split_url(url)
        with self.errors("write", url):
            self.client.upload_file(str(src), bucket, key)

    def delete(self, urls: list[str]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for u in urls:
            b, k = split_url(u)
            by_bucket.setdefault(b, []).append(k)
        for bucket, keys in by_bucket.items():
            for i in range(0, len(keys), 1000):
                chunk = keys[i:i + 1000]
                with self.errors("delete", f"s3://{bucket}/{chunk[0]}"):
                    resp = self.client.delete_objects(
                        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk]}
                    )
                for err in resp.get("Errors", []):
                    raise ConnectorError(
                        f"{self.who}: cannot delete s3://{bucket}/{err.get('Key')}: "
                        f"{err.get('Code')}: {self.redact(str(err.get('Message', '')))}",
                        path=self.config_path,
                    )


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
