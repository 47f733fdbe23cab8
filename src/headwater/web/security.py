"""Who may talk to the server: bind rules, the token, cross-site and host checks.

* Loopback only by default. Listening on any other address needs a token
  (``--token`` or ``HEADWATER_TOKEN``); :func:`check_bind` refuses otherwise.
* State-changing requests (POST) need the token when one is set, as
  ``Authorization: Bearer <token>`` or ``X-Headwater-Token: <token>``.
* Every POST, token or not, must come from the UI's own origin: a browser's
  ``Origin`` must match the ``Host`` it talks to, ``Sec-Fetch-Site`` must not
  say cross-site, and the body must be JSON, which a cross-site form cannot
  send and a cross-site script cannot send without a CORS preflight that this
  server never grants.
* On loopback the ``Host`` header must name the loopback too, so a web page
  that re-points its own domain at 127.0.0.1 (DNS rebinding) is refused.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from headwater.errors import HeadwaterError

TOKEN_ENV = "HEADWATER_TOKEN"
TOKEN_HEADER = "x-headwater-token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ServeError(HeadwaterError):
    """``headwater serve`` cannot start as asked."""

    exit_code = 2


class AccessDenied(HeadwaterError):
    """A request the server refuses; ``status`` is its HTTP status code."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond the loopback without a token."""
    if is_loopback(host) or token:
        return
    raise ServeError(
        f"refusing to listen on {host} without a token: anyone who can reach that address "
        "could read the pipeline and start runs",
        hint=f"pass --token TOKEN or set {TOKEN_ENV} (e.g. `export {TOKEN_ENV}=$(python3 -c "
        "'import secrets; print(secrets.token_urlsafe(24))')`), or listen on 127.0.0.1",
    )


def trusted_hosts_for(host: str) -> list[str] | None:
    """The ``Host`` names to accept when listening on ``host``; None accepts any."""
    if not is_loopback(host):
        return None  # reachable under names we cannot know; the token protects it
    return sorted({*LOOPBACK_HOSTS, host.strip("[]")})


def host_allowed(host_header: str | None, trusted: Iterable[str] | None) -> bool:
    if trusted is None:
        return True
    if not host_header:
        return False
    try:
        name = urlsplit(f"//{host_header}").hostname or ""
    except ValueError:
        return False
    name = name.strip("[]").lower()
    return name in {t.strip("[]").lower() for t in trusted} or (
        is_loopback(name) and any(is_loopback(t) for t in trusted))


def check_write(
    headers: dict[str, str], *, scheme: str, token: str | None
) -> None:
    """Raise :class:`AccessDenied` unless a state-changing request may go ahead.

    ``headers`` maps lower-case header names to values.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise AccessDenied(f"cross-site request refused (Sec-Fetch-Site: {site})", status=403)
    origin = headers.get("origin")
    if origin is not None:
        host = headers.get("host", "")
        if origin == "null" or origin.rstrip("/").lower() != f"{scheme}://{host}".lower():
            raise AccessDenied("cross-origin request refused: Origin does not match Host",
                               status=403)
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise AccessDenied(
            "state-changing requests must send a JSON body (Content-Type: application/json)",
            status=415,
        )
    if token is None:
        return
    given = headers.get(TOKEN_HEADER)
    auth = headers.get("authorization", "")
    if given is None and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    if given is None:
        raise AccessDenied("this server needs a token for that",
                           status=401, hint=f"send it as the {TOKEN_HEADER} header or as "
                           "Authorization: Bearer TOKEN")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise AccessDenied("wrong token", status=401)
