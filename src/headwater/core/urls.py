"""What a URL setting must look like before anything is sent to it."""

from __future__ import annotations

import re

_HTTP = re.compile(r"https?://[^/\s?#]+", re.IGNORECASE)


def check_http_url(value: str | None) -> str | None:
    """``value`` if it is an http(s) URL (or starts with a ``${VAR}`` that will be one)."""
    if value is None or value.startswith("${") or _HTTP.match(value):
        return value
    guess = value.split("://", 1)[-1]
    raise ValueError(
        f"must start with http:// or https://, got {value!r}: write"
        f" \"https://{guess}\"" if "://" not in value or value.split("://")[0] == "" else
        f"must be an http:// or https:// URL, got the scheme {value.split('://')[0]!r}")
