"""Secrets: which values are secret, and masking them wherever Headwater writes text.

Secrets only come from the environment: ``${VAR}`` in ``headwater.toml``,
``sources/*.toml`` or ``sinks/*.toml``. A variable's value is a secret when

* the variable is named like one (``PASSWORD``, ``PGPASS``, ``API_KEY``, ``TOKEN``,
  ``SECRET``, ``AUTH``, ``CREDENTIALS``, ``PRIVATE``, ``COOKIE``, ``SESSION`` ...), as
  Airflow's masker decides;
* it sits in a credential position (a ``password``, ``token``, ``api_key``,
  ``secret_access_key``, any HTTP header, the password of a dsn, the notify webhook's
  URL), whatever its name;
* or ``headwater.toml`` lists it: ``secrets = ["WAREHOUSE_DB"]``.

The loader learns the secrets of a project as it reads its files (``learn_config``);
connectors that resolve ``${VAR}`` later report theirs too (``learn``). ``redact``
then masks every learnt value in every form it may be written in: as is, URL-encoded
(``%40`` / ``+``), JSON- and HTML-escaped, and base64 (standard and URL-safe, at the
three byte alignments, which is how ``Authorization: Basic base64(user:secret)`` shows
it). The CLI's stdout and stderr, every log record, the state store, the docs site,
OpenLineage events and the web UI go through it.

A secret shorter than ``MIN_LENGTH`` characters is not masked in free text (a password
``test`` would also mask the database ``test`` and every path holding the word): a
warning says so, and it is still masked where it is structurally a password (a dsn's
user-info, ``password=``), by the connectors.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

log = logging.getLogger(__name__)

MASK = "***"
MIN_LENGTH = 8
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_NAME = re.compile(
    r"PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION|SIGNATURE|CERT",
    re.IGNORECASE)
# the last part of a setting's key path that holds a credential whatever is in it
_CREDENTIAL_KEY = re.compile(
    r"(password|passwd|token|api_key|apikey|secret\w*|access_key\w*|session_token"
    r"|authorization|auth|cookie|credentials?)$", re.IGNORECASE)

_lock = threading.Lock()
_values: dict[str, str] = {}  # secret value -> the variable it came from
_marked: set[str] = set()  # variables headwater.toml's `secrets` names
_warned: set[str] = set()
_needles: list[str] | None = None  # every form of every value, longest first


def is_secret(var: str, key: str = "") -> bool:
    """Whether ``${var}`` written at setting ``key`` (``headers.Authorization``,
    ``dsn (password)``, ``url`` ...) holds a secret."""
    if var in _marked or _SECRET_NAME.search(var):
        return True
    last = re.split(r"[.\s(]+", key.strip(" )"))[-1] if key else ""
    # a webhook's URL is its credential (Slack, Teams: whoever knows it may post)
    return bool(key.startswith("headers") or key == "notify.url"
                or _CREDENTIAL_KEY.search(last))


def mark(names: Iterable[str]) -> None:
    """Variables listed as secrets in headwater.toml (``secrets = [...]``)."""
    names = list(names)
    with _lock:
        _marked.update(names)
    for var in names:
        learn(var, os.environ.get(var), where="headwater.toml")


def learn(var: str, value: str | None, *, where: str = "") -> None:
    """Remember the value of a secret variable (too short: warn, once)."""
    global _needles
    if not value:
        return
    if len(value) < MIN_LENGTH:
        if var not in _warned:
            _warned.add(var)
            log.warning(
                "%sthe secret in ${%s} has only %d characters: it is masked where it is a"
                " password, but not in other text (it would mask ordinary words); use at"
                " least %d characters", f"{where}: " if where else "", var, len(value),
                MIN_LENGTH)
        return
    with _lock:
        if value not in _values:
            _values[value] = var
            _needles = None
    install_log_filter()


def learn_config(data: Mapping[str, Any], path: Path | None = None) -> None:
    """Learn the secrets a parsed TOML file refers to, from where each ``${VAR}`` sits."""
    where = path.name if path is not None else ""
    for key, text in _strings(data, ""):
        for var in ENV_VAR.findall(text):
            if is_secret(var, key) or _dsn_password(text, var):
                learn(var, os.environ.get(var), where=where)


def _strings(value: Any, key: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)


def _dsn_password(text: str, var: str) -> bool:
    """``${var}`` is the password of a URL-style dsn (``scheme://user:${VAR}@host``)."""
    return re.search(r"://[^:/@\s]*:[^@\s]*\$\{" + re.escape(var) + r"\}[^@\s]*@", text) \
        is not None


def forms(value: str) -> set[str]:
    """Every way ``value`` may be written down by Headwater, a library or a server."""
    out = {value, quote(value, safe=""), quote(value), quote_plus(value),
           json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
           html.escape(value), html.escape(value, quote=False)}
    raw = value.encode("utf-8")
    for start in range(3):  # where the value starts inside a base64 group
        body = raw[start:]
        body = body[: len(body) - len(body) % 3]
        if len(body) >= 6:  # at least 8 characters that only the secret decides
            b64 = base64.b64encode(body).decode()
            out |= {b64, b64.replace("+", "-").replace("/", "_")}
    return {f for f in out if f}


def _all_needles() -> list[str]:
    global _needles
    with _lock:
        if _needles is None:
            found: set[str] = set()
            for value in _values:
                found |= forms(value)
            _needles = sorted(found, key=len, reverse=True)
        return _needles


def active() -> bool:
    """Whether any secret has been learnt (nothing to mask otherwise)."""
    return bool(_values)


def redact(text: str) -> str:
    """``text`` with every form of every learnt secret replaced by ``***``."""
    if not _values or not text:
        return text
    for needle in _all_needles():
        if needle in text:
            text = text.replace(needle, MASK)
    return text


def redact_bytes(data: bytes) -> bytes:
    if not _values or not data:
        return data
    for needle in _all_needles():
        raw = needle.encode("utf-8")
        if raw in data:
            data = data.replace(raw, MASK.encode())
    return data


def redact_value(value: Any) -> Any:
    """Strings redacted inside nested dicts and lists (JSON documents, query params)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


def forget() -> None:
    """Forget everything learnt (tests)."""
    global _needles
    with _lock:
        _values.clear()
        _marked.clear()
        _warned.clear()
        _needles = None


# -- where text leaves the process ----------------------------------------------------


class RedactingStream:
    """A text stream that masks secrets in what is written to it (stdout, stderr)."""

    def __init__(self, raw: TextIO) -> None:
        self._raw = raw

    def write(self, text: str) -> int:
        self._raw.write(redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def protect_std_streams() -> None:
    """Mask secrets in everything this process prints (the CLI calls it first)."""
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)
    install_log_filter()


_factory_installed = False


def install_log_filter() -> None:
    """Mask secrets in every log record, whatever handler writes it (files, JSON logs)."""
    global _factory_installed
    if _factory_installed:
        return
    _factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _values:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string is logging's to report
                return record
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, ()
        return record

    logging.setLogRecordFactory(factory)
