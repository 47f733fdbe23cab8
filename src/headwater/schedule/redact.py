"""Keeping secrets out of scheduler logs and notifications.

Secrets only come from the environment (``${VAR}`` in a TOML file); which are
secrets, and their masking in every form, is ``headwater.core.secrets``. The redactor
adds values it is given (a webhook URL) and masks both wherever the scheduler would
print; URLs additionally lose their user-info and query string.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_MIN_SECRET = 4  # shorter values ("1", "on") would blank out ordinary text
MASK = "***"


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= _MIN_SECRET:
            self._secrets.add(secret)

    def extend(self, other: Redactor) -> None:
        self._secrets |= other._secrets

    @classmethod
    def for_project(cls, root: Path) -> Redactor:
        """Learn the secrets of headwater.toml, sources/*.toml and sinks/*.toml (the values
        of the ``${VAR}``s ``headwater.core.secrets`` calls secret)."""
        import tomllib

        from headwater.core import secrets

        files = [root / "headwater.toml", *sorted(root.glob("sources/*.toml")),
                 *sorted(root.glob("sinks/*.toml"))]
        for f in files:
            try:
                secrets.learn_config(tomllib.loads(f.read_text("utf-8")), f)
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
        return cls()

    def __call__(self, text: str) -> str:
        from headwater.core.secrets import redact

        # longest first, so a secret containing another is masked whole
        for s in sorted(self._secrets, key=len, reverse=True):
            if s in text:
                text = text.replace(s, MASK)
        return redact(text)

    def url(self, url: str) -> str:
        """``url`` safe to print: no user-info, no query, no known secret."""
        return self(redact_url(url))


def redact_url(url: str) -> str:
    """Drop the user-info and the query string of ``url``; keep scheme, host and path."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    if parts.username or parts.password:
        host = f"{MASK}@{host}"
    query = MASK if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, ""))
