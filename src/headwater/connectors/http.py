"""JSON REST APIs: pages of records in, Arrow record batches out.

``type = "http"`` GETs ``url`` (with ``params`` and ``headers``; ``${VAR}``
references are resolved from the environment when the source is read), takes
the list of records at the dotted path ``records`` of each response and
follows the pagination until a page is empty or there is no next page.

How records become Arrow: every page's records are appended to a temporary
NDJSON file as they arrive (memory stays bounded by one page), then DuckDB's
JSON reader reads that file with the whole file as its type sample. So a
field missing from some pages is NULL there, nested objects become STRUCTs,
arrays LISTs, ISO-8601 strings TIMESTAMP/DATE, and a field whose type varies
between records (a number here, an object there) becomes JSON text. Batches
hold up to 100,000 rows.

Incremental: with ``cursor = "field"`` and a previous cursor value (``since``),
only records whose field is greater are returned; the filter runs on this side
always, even when ``cursor_param`` also sends ``since`` to the server.
Records without the field are dropped from incremental reads.

Failures: HTTP 429 and 5xx, timeouts, dropped connections, truncated bodies
and invalid JSON are retried (``retries`` times, exponential backoff from
``retry_delay``, or the server's ``Retry-After``); after that the read fails
with ``ConnectorError(transient=True)``. Other 4xx fail at once. Error
messages show the URL without its query string and never a header; values
read from the environment are masked wherever text from the server is shown.

Change detection: an API cannot be fingerprinted cheaply, so
:meth:`HttpSource.data_fingerprint` changes on every call (every run reads the
source) unless ``change_marker_url`` names a URL whose body changes exactly
when the data does (a "last modified" endpoint, an export's manifest ...).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TextIO
from urllib.parse import urljoin, urlsplit

from pydantic import Field, field_validator, model_validator

from headwater.connectors.base import SourceConfig, SourceConnector
from headwater.core.config import StrictModel, resolve_env
from headwater.core.quoting import quote_ident
from headwater.errors import ConnectorError

if TYPE_CHECKING:
    import httpx
    import pyarrow as pa

log = logging.getLogger(__name__)

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_NAME = re.compile(r"auth|token|key|secret|password|passwd|signature|cookie|session",
                          re.IGNORECASE)
_MAX_WAIT = 300.0  # longest Retry-After honoured before giving up
_BATCH_ROWS = 100_000
_sleep = time.sleep  # tests replace it to see the waits without waiting


class PagePagination(StrictModel):
    """``?page=1``, ``?page=2`` ... until a page is empty."""

    type: Literal["page"]
    param: str = "page"
    start: int = 1
    size_param: str | None = None
    size: int | None = Field(default=None, ge=1)


class OffsetPagination(StrictModel):
    """``?offset=0&limit=100``, then offset plus the records received, until a page is empty."""

    type: Literal["offset"]
    param: str = "offset"
    limit_param: str | None = "limit"
    limit: int = Field(default=100, ge=1)


class CursorPagination(StrictModel):
    """A token from each response (dotted path ``next``) sent back as ``param``."""

    type: Literal["cursor"]
    param: str = "cursor"
    next: str


class NextLinkPagination(StrictModel):
    """The next page's URL from the response (dotted path ``next``) or its Link header."""

    type: Literal["next_link"]
    next: str | None = None


Pagination = Annotated[
    PagePagination | OffsetPagination | CursorPagination | NextLinkPagination,
    Field(discriminator="type"),
]


class HttpSourceConfig(SourceConfig):
    type: Literal["http"] = "http"
    url: str
    records: str | None = None
    headers: dict[str, str] = {}
    params: dict[str, str | int | float | bool] = {}
    pagination: Pagination | None = None
    cursor: str | None = None
    cursor_param: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    change_marker_url: str | None = None

    @field_validator("url", "change_marker_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        from headwater.core.urls import check_http_url

        return check_http_url(v)

    @model_validator(mode="after")
    def _cursor_param_needs_cursor(self) -> HttpSourceConfig:
        if self.cursor_param and not self.cursor:
            raise ValueError("cursor_param needs cursor = \"field\" (the field to compare)")
        return self


class HttpSource(SourceConnector):
    type = "http"
    retries_inside = True
    Config = HttpSourceConfig
    config: HttpSourceConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rejects: pa.Table | None = None
        self._secrets: list[str] = []
        self.stream_error: ConnectorError | None = None

    # -- what is safe to show ---------------------------------------------------------------

    def describe(self) -> dict[str, object]:
        """The config with every header and secret-looking param that is not an env reference
        masked (``"Bearer ${TOKEN}"`` is shown as written: it holds no secret)."""
        out = super().describe()

        def mask(values: dict[str, Any], all_secret: bool) -> dict[str, Any]:
            return {
                k: v if not isinstance(v, str) or "${" in v
                or not (all_secret or _SECRET_NAME.search(k)) else "***"
                for k, v in values.items()
            }

        out["headers"] = mask(self.config.headers, all_secret=True)
        out["params"] = mask(self.config.params, all_secret=False)
        return out

    def _resolve(self, value: str, key: str) -> str:
        """``value`` with ``${VAR}`` replaced; the variables' values are remembered as secrets."""
        from headwater.core import secrets

        for var in _ENV_VAR.findall(value):
            secret = os.environ.get(var)
            if secret and len(secret) >= secrets.MIN_LENGTH and secrets.is_secret(var, key):
                self._secrets.append(secret)
        return resolve_env(value, path=self.config_path, key=key)

    def redact(self, text: str) -> str:
        from headwater.core import secrets

        for s in sorted(set(self._secrets), key=len, reverse=True):
            text = text.replace(s, "***")
        return secrets.redact(text)  # and every other form (URL-encoded, base64 ...)

    @staticmethod
    def safe_url(url: str) -> str:
        """``url`` without its query string, fragment and user:password."""
        p = urlsplit(url)
        port = f":{p.port}" if p.port else ""
        return f"{p.scheme}://{p.hostname or ''}{port}{p.path}"

    # -- change detection -----------------------------------------------------------------

    def data_fingerprint(self) -> str:
        """New on every call, unless ``change_marker_url`` gives something to hash.

        The marker is fetched once, without retries; if that fails the
        fingerprint is new again, so the source is read and the read reports
        the problem.
        """
        marker = self.config.change_marker_url
        if marker:
            try:
                import httpx

                headers = {k: self._resolve(v, f"headers.{k}")
                           for k, v in self.config.headers.items()}
                url = self._resolve(marker, "change_marker_url")
                resp = httpx.get(url, headers=headers, timeout=self.config.timeout,
                                 follow_redirects=True)
                if resp.is_success:
                    h = hashlib.sha256(self.config.model_dump_json().encode())
                    h.update(b"\0" + resp.content)
                    return h.hexdigest()
                log.warning("source %r: change_marker_url %s returned %s; reading the source",
                            self.name, self.safe_url(url), resp.status_code)
            except Exception as exc:  # never fail planning over a marker
                log.warning("source %r: change_marker_url failed (%s); reading the source",
                            self.name, type(exc).__name__)
        return f"volatile:{time.time_ns()}"

    def rejects(self) -> pa.Table | None:
        """Records that are not JSON objects (``on_bad_rows = "quarantine"``)."""
        return self._rejects

    # -- reading --------------------------------------------------------------------------

    def read(self, since: Any | None = None) -> pa.RecordBatchReader:
        import duckdb
        import pyarrow as pa

        self._rejects = None
        self.stream_error = None
        _quiet_httpx_logging()
        folder = Path(tempfile.mkdtemp(prefix="headwater-http-"))
        con: Any = None
        try:
            spool = folder / "records.ndjson"
            with open(spool, "w", encoding="utf-8") as out:
                count, rejects = self._fetch_all(out, since)
            if self.config.on_bad_rows == "quarantine":
                self._rejects = _rejects_table(rejects)
            if count == 0:
                shutil.rmtree(folder, ignore_errors=True)
                # no record, so no schema: an empty reader without columns
                return pa.RecordBatchReader.from_batches(pa.schema([]), iter([]))
            con = duckdb.connect()
            con.execute("SET enable_progress_bar = false")  # stdout belongs to the CLI (--json)
            sql = "SELECT * FROM read_json($f, format = 'newline_delimited', sample_size = -1)"
            params: dict[str, Any] = {"f": str(spool)}
            cursor = self.config.cursor
            if since is not None and cursor:
                columns = con.sql(sql, params=params).columns
                if cursor not in columns:
                    raise ConnectorError(
                        f"source {self.name!r}: no record from {self.safe_url(self.config.url)} "
                        f"has the cursor field {cursor!r}",
                        path=self.config_path,
                        hint=f"the records have: {', '.join(columns)}; fix cursor",
                    )
                sql += f" WHERE {quote_ident(cursor)} > $since"
                params["since"] = since
            try:
                reader = con.sql(sql, params=params).to_arrow_reader(_BATCH_ROWS)
            except duckdb.Error as exc:
                raise ConnectorError(
                    f"source {self.name!r}: cannot turn the records of "
                    f"{self.safe_url(self.config.url)} into a table: "
                    f"{self.redact(str(exc).strip().splitlines()[0])}",
                    path=self.config_path,
                ) from None
        except BaseException:
            if con is not None:
                con.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                try:
                    yield from reader
                except (duckdb.Error, pa.ArrowException, OSError) as exc:
                    self.stream_error = ConnectorError(
                        f"source {self.name!r}: reading the records of "
                        f"{self.safe_url(self.config.url)} failed: "
                        f"{self.redact(str(exc).strip().splitlines()[0])}",
                        path=self.config_path,
                    )
                    raise self.stream_error from None
            finally:
                con.close()
                shutil.rmtree(folder, ignore_errors=True)

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def _fetch_all(self, out: TextIO, since: Any | None) -> tuple[int, list[tuple[str, str, str]]]:
        """GET every page, append its records to ``out``; (records written, rejects)."""
        import httpx

        cfg = self.config
        headers = {k: self._resolve(v, f"headers.{k}") for k, v in cfg.headers.items()}
        for k, v in cfg.headers.items():
            if "${" not in v and len(v) >= 3 and _SECRET_NAME.search(k):
                self._secrets.append(v)  # a literal secret: mask it all the same
        query: dict[str, Any] = {
            k: self._resolve(v, f"params.{k}") if isinstance(v, str) else v
            for k, v in cfg.params.items()
        }
        url = self._resolve(cfg.url, "url")
        if since is not None and cfg.cursor_param:
            query[cfg.cursor_param] = _param_text(since)
        pag = cfg.pagination
        if isinstance(pag, PagePagination):
            query[pag.param] = pag.start
            if pag.size_param and pag.size:
                query[pag.size_param] = pag.size
        elif isinstance(pag, OffsetPagination):
            query[pag.param] = 0
            if pag.limit_param:
                query[pag.limit_param] = pag.limit
        given = {k.lower() for k in headers}
        if "accept" not in given:
            headers["Accept"] = "application/json"
        if "user-agent" not in given:
            headers["User-Agent"] = "headwater"
        origin = urlsplit(url).netloc
        seen: set[str] = set()
        previous_digest = ""
        count = 0
        rejects: list[tuple[str, str, str]] = []
        page = 0
        with httpx.Client(headers=headers, timeout=cfg.timeout, follow_redirects=True) as client:
            while True:
                page += 1
                resp, body = self._get(client, url, query, page)
                records = self._records(body, url, page)
                if not records:
                    break
                if isinstance(pag, PagePagination | OffsetPagination):
                    digest = hashlib.sha256(
                        json.dumps(records, sort_keys=True).encode()).hexdigest()
                    if digest == previous_digest:
                        raise ConnectorError(
                            f"source {self.name!r}: page {page} of {self.safe_url(url)} has "
                            f"the same records as page {page - 1}",
                            path=self.config_path,
                            hint=f"the API seems to ignore the {pag.param!r} parameter; check "
                            "pagination (param, type) against the API's documentation",
                        )
                    previous_digest = digest
                where = f"{self.safe_url(url)} page {page}"
                for i, rec in enumerate(records, 1):
                    if isinstance(rec, dict):
                        out.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
                        out.write("\n")
                        count += 1
                        continue
                    reason = f"record {i} is not a JSON object (a {type(rec).__name__})"
                    if cfg.on_bad_rows == "fail":
                        raise ConnectorError(
                            f"source {self.name!r}: {where}: {reason}",
                            path=self.config_path,
                            hint="point records at a list of objects, or set "
                            'on_bad_rows = "quarantine" to skip such records',
                        )
                    rejects.append((f"{where} record {i}", reason,
                                    self.redact(json.dumps(rec))[:1000]))
                # the next page
                if pag is None:
                    break
                if isinstance(pag, PagePagination):
                    query[pag.param] += 1
                elif isinstance(pag, OffsetPagination):
                    query[pag.param] += len(records)
                elif isinstance(pag, CursorPagination):
                    token = _dig(body, pag.next)
                    if token in (None, "", False):
                        break
                    token = str(token)
                    if token in seen:
                        raise self._loop_error(url, page, f"cursor {pag.next!r}")
                    seen.add(token)
                    query[pag.param] = token
                else:
                    link = _dig(body, pag.next) if pag.next else \
                        resp.links.get("next", {}).get("url")
                    if not link:
                        break
                    nxt = urljoin(str(resp.url), str(link))
                    if urlsplit(nxt).netloc != origin:
                        raise ConnectorError(
                            f"source {self.name!r}: the next-page link of {self.safe_url(url)} "
                            f"points to another host ({urlsplit(nxt).hostname})",
                            path=self.config_path,
                            hint="Headwater follows next links on the API's own host only, so "
                            "its headers (credentials) go nowhere else",
                        )
                    if nxt in seen:
                        raise self._loop_error(url, page, "next link")
                    seen.add(nxt)
                    url, query = nxt, {}  # the link carries its own query string
        return count, rejects

    def _loop_error(self, url: str, page: int, what: str) -> ConnectorError:
        return ConnectorError(
            f"source {self.name!r}: page {page} of {self.safe_url(url)} repeats an earlier "
            f"{what}: the pagination would never end",
            path=self.config_path,
            hint="check pagination.next against the API's responses",
        )

    def _get(
        self, client: httpx.Client, url: str, query: dict[str, Any], page: int
    ) -> tuple[httpx.Response, Any]:
        """One page, retried on 429/5xx, timeouts, dropped connections and broken JSON."""
        import httpx

        attempts = self.config.retries + 1
        shown = self.safe_url(url)
        problem = ""
        for attempt in range(attempts):
            wait: float | None = None
            try:
                resp = client.get(url, params=query or None)
            except httpx.TimeoutException:
                problem = f"timed out after {self.config.timeout:g}s"
            except httpx.RemoteProtocolError as exc:
                problem = f"the response was cut off ({self.redact(str(exc))})"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__}: {self.redact(str(exc))})"
            else:
                status = resp.status_code
                if status == 429 or status >= 500:
                    problem = f"HTTP {status} {resp.reason_phrase}".rstrip()
                    wait = _retry_after(resp)
                    if wait is not None and wait > _MAX_WAIT:
                        raise ConnectorError(
                            f"source {self.name!r}: GET {shown} (page {page}): {problem}, "
                            f"and the server asks to wait {wait:.0f}s",
                            transient=True,
                            path=self.config_path,
                            hint="run again later (the scheduler retries at the next slot)",
                        )
                elif status >= 400:
                    raise self._client_error(resp, shown, page)
                else:
                    ctype = resp.headers.get("Content-Type", "")
                    if "html" in ctype.lower():
                        raise ConnectorError(
                            f"source {self.name!r}: GET {shown} (page {page}) returned "
                            f"{ctype.split(';')[0]}, not JSON",
                            path=self.config_path,
                            hint="check url: it looks like a web page, not an API endpoint",
                        )
                    try:
                        return resp, json.loads(resp.content)
                    except ValueError as exc:
                        size = len(resp.content)
                        problem = (f"invalid JSON ({exc}; the body has {size} bytes"
                                   f"{', truncated?' if size else ''})")
            if attempt == attempts - 1:
                break
            delay = wait if wait is not None else self.config.retry_delay * 2**attempt
            log.warning("source %r: GET %s (page %d): %s; retrying in %.1fs (%d of %d)",
                        self.name, shown, page, problem, delay, attempt + 1, attempts - 1)
            _sleep(delay)
        raise ConnectorError(
            f"source {self.name!r}: GET {shown} (page {page}) failed after {attempts} "
            f"attempt{'s' if attempts > 1 else ''}: {problem}",
            transient=True,
            path=self.config_path,
            hint="the API may be down or overloaded; raise retries/retry_delay or run again "
            "later",
        )

    def _client_error(self, resp: httpx.Response, shown: str, page: int) -> ConnectorError:
        status = resp.status_code
        excerpt = self.redact(resp.text[:300].strip()) if resp.content else ""
        env_vars = sorted({v for text in [*self.config.headers.values(),
                                          *map(str, self.config.params.values())]
                           for v in _ENV_VAR.findall(text)})
        if status in (401, 403):
            hint = "check the credentials" + (
                f" (environment variable{'s' if len(env_vars) > 1 else ''} "
                f"{', '.join(env_vars)})" if env_vars else " in headers/params")
        elif status == 404:
            hint = "check url"
        else:
            hint = "check params and the API's documentation"
        return ConnectorError(
            f"source {self.name!r}: GET {shown} (page {page}) returned HTTP {status} "
            f"{resp.reason_phrase}".rstrip() + (f": {excerpt}" if excerpt else ""),
            path=self.config_path,
            hint=hint,
        )

    def _records(self, body: Any, url: str, page: int) -> list[Any]:
        path = self.config.records
        shown = self.safe_url(url)
        if path is None:
            if isinstance(body, list):
                return body
            if isinstance(body, dict):
                lists = [k for k, v in body.items() if isinstance(v, list)]
                raise ConnectorError(
                    f"source {self.name!r}: the response of {shown} is an object, not a list "
                    "of records",
                    path=self.config_path,
                    hint=(f"set records = {lists[0]!r} (keys holding lists: "
                          f"{', '.join(lists)})" if lists else
                          f'set records = "dotted.path" to the list (keys: '
                          f'{", ".join(list(body)[:10])})'),
                )
            raise ConnectorError(
                f"source {self.name!r}: the response of {shown} is not a list of records",
                path=self.config_path,
            )
        missing = object()
        value = _dig(body, path, missing)
        if value is missing:
            if page > 1:
                return []  # some APIs drop the list from the page after the last
            raise ConnectorError(
                f"source {self.name!r}: the response of {shown} has nothing at records = "
                f"{path!r}",
                path=self.config_path,
                hint=_what_is_there(body, path),
            )
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConnectorError(
                f"source {self.name!r}: records = {path!r} in the response of {shown} is "
                f"a {type(value).__name__}, not a list",
                path=self.config_path,
            )
        return value


def _dig(body: Any, path: str, default: Any = None) -> Any:
    """The value at dotted ``path`` (``data.items``, ``results.0.rows``) of a JSON value."""
    cur = body
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and \
                -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return default
    return cur


def _what_is_there(body: Any, path: str) -> str:
    """A hint showing which keys exist where the dotted ``path`` stops matching."""
    cur: Any = body
    walked: list[str] = []
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur, walked = cur[part], [*walked, part]
            continue
        where = ".".join(walked) or "the top level"
        if isinstance(cur, dict):
            return f"{where} has keys: {', '.join(list(cur)[:15])}"
        return f"{where} is a {type(cur).__name__}"
    return "fix records"


def _param_text(value: Any) -> str:
    iso = getattr(value, "isoformat", None)
    return str(iso()) if callable(iso) else str(value)


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), if any."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _rejects_table(rows: list[tuple[str, str, str]]) -> pa.Table:
    import pyarrow as pa

    return pa.table({
        "location": pa.array([r[0] for r in rows], pa.string()),
        "reason": pa.array([r[1] for r in rows], pa.string()),
        "raw": pa.array([r[2] for r in rows], pa.string()),
    })


def _quiet_httpx_logging() -> None:
    """httpx logs every request's full URL (query string included) at INFO: keep it quiet
    unless someone chose its level, since params may carry secrets from the environment."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
