"""``headwater serve``: the web UI on uvicorn, loopback by default."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from headwater.errors import HeadwaterError
from headwater.web.security import ServeError, check_bind, trusted_hosts_for

if TYPE_CHECKING:
    from headwater.api import Project

DEFAULT_PORT = 8580
SHUTDOWN_GRACE = 3  # seconds open connections (event streams) get to close at shutdown


def _require_deps() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise HeadwaterError(
            f"the web UI needs FastAPI and uvicorn ({exc.name} is not installed)",
            hint="pip install 'headwater[web]'",
        ) from None


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another port with --port (0 picks a free one)"
            if exc.errno in (98, 48) else "check the --host address",
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    shown = f"[{host.strip('[]')}]" if ":" in host.strip("[]") else host
    return f"http://{shown}:{port}/"


def make_server(
    project: Project, *, host: str, token: str | None, log_level: str = "warning"
) -> Any:
    """A uvicorn server for ``project`` (not started); the bind rules are checked first."""
    _require_deps()
    check_bind(host, token)
    import uvicorn

    from headwater.web.app import create_app

    app = create_app(project, token=token, trusted_hosts=trusted_hosts_for(host))
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=SHUTDOWN_GRACE,
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    app.state.web.closing = lambda: bool(server.should_exit)
    return server


def serve(
    project: Project,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the UI until interrupted; a run in progress is finished before exiting."""
    project.loaded  # a broken project fails here, with its file and line  # noqa: B018
    server = make_server(project, host=host, token=token)
    sock = bind_socket(host, port)
    url = url_of(host, sock.getsockname()[1])
    (announce or (lambda text: print(text, file=sys.stderr, flush=True)))(url)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it already handled: stopping is the normal end
    finally:
        sock.close()
        web = server.config.app.state.web
        if not web.manager.join(0):
            print("waiting for the run in progress to finish ...", file=sys.stderr, flush=True)
            web.manager.join()


class Background:
    """The UI served from a thread, for notebooks and tests; ``with`` stops it cleanly.

    >>> with Background(Project("shop"), port=0) as ui:      # doctest: +SKIP
    ...     print(ui.url)                                     # http://127.0.0.1:41234/
    """

    def __init__(
        self, project: Project, *, host: str = "127.0.0.1", port: int = 0,
        token: str | None = None, start_timeout: float = 20.0,
    ) -> None:
        import threading

        self.server = make_server(project, host=host, token=token)
        self.app = self.server.config.app
        self._sock = bind_socket(host, port)
        self.url = url_of(host, self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]},
                                        name="headwater-web", daemon=True)
        self._timeout = start_timeout

    def start(self) -> Background:
        import time

        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise ServeError(f"the web server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving; wait for a run the UI started to finish."""
        self.server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()
        self.app.state.web.manager.join(timeout)

    def __enter__(self) -> Background:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
