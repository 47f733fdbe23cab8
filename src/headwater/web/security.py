"""Who may talk to the server: bind rules, the token, cross-site and host checks.

* Loopback only by default. Listening on any other address needs a token
  (``--token`` or ``HEADWATER_TOKEN``); :func:`check_bind` refuses otherwise.
* When the server has a token, every API request needs it — reads too: node
  pages show data — as ``Authorization: Bearer <token>``, ``X-Headwater-Token:
  <token>`` or the session cookie the UI gets from ``POST /api/session`` (an
  HMAC of the token, HttpOnly, SameSite=Strict; never the token itself). The
  HTML pages are shells without data and load without it.
* Every POST, token or not, must come from the UI's own origin: a browser's
  ``Origin`` must match the ``Host`` it talks to, ``Sec-Fetch-Site`` must not
  say cross-site, and the body must be JSON, which a cross-site form cannot
  send and a cross-site script cannot send without a CORS preflight that this
  server never grants.
* On loopback the ``Host`` header must name the loopback too, so a web page
  that re-points its own domain at 127.0.0.1 (DNS rebinding) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from headwater.errors import HeadwaterError

TOKEN_ENV = "HEADWATER_TOKEN"
TOKEN_HEADER = "x-headwater-token"
SESSION_COOKIE = "hw_session"
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


MIN_TOKEN = 16  # characters a token needs beyond the loopback


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond the loopback without a token, or with a weak one."""
    if is_loopback(host):
        return
    if token and len(token) < MIN_TOKEN:
        raise ServeError(
            f"refusing to listen on {host} with a {len(token)}-character token: anyone who"
            f" can reach that address could guess it (at least {MIN_TOKEN} characters)",
            hint=f"pass a longer --token or {TOKEN_ENV}, e.g. `export {TOKEN_ENV}=$(python3 -c "
            "'import secrets; print(secrets.token_urlsafe(24))')`")
    if token:
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


def session_value(token: str) -> str:
    """The session cookie's value: proves the token was given, cannot be turned back into it."""
    return hmac.new(token.encode(), b"headwater-session", hashlib.sha256).hexdigest()


def _given(headers: dict[str, str]) -> str | None:
    given = headers.get(TOKEN_HEADER)
    auth = headers.get("authorization", "")
    if given is None and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    return given


def _cookie(headers: dict[str, str]) -> str | None:
    from http.cookies import CookieError, SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None


def check_token(headers: dict[str, str], token: str | None) -> None:
    """Raise :class:`AccessDenied` unless the request proves it knows ``token`` (when set)."""
    if token is None:
        return
    given = _given(headers)
    if given is not None:
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise AccessDenied("wrong token", status=401)
        return
    cookie = _cookie(headers)
    if cookie is not None and hmac.compare_digest(cookie.encode(),
                                                  session_value(token).encode()):
        return
    raise AccessDenied("this server needs its token", status=401,
                       hint=f"send it as the {TOKEN_HEADER} header or as Authorization: "
                       "Bearer TOKEN; in a browser, enter it when the page asks")


def check_write(
    headers: dict[str, str], *, scheme: str, token: str | None
) -> None:
    """Raise :class:`AccessDenied` unless a state-changing request may go ahead.

    ``headers`` maps lower-case header names to values.
    """
    check_same_origin(headers, scheme=scheme)
    check_token(headers, token)


def check_same_origin(headers: dict[str, str], *, scheme: str) -> None:
    """A JSON request from this server's own pages (or from no browser at all)."""
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
