"""Serving the payment system and the simulated bank: waitress in production, a thread for tests and demos.

`ServerThread` runs any WSGI app on a real TCP port in a background thread (werkzeug's threaded server),
so tests, benchmarks and the demo talk HTTP to the same code a store runs; it is a context manager and
`close()` stops it, cuts the connections still open and frees the port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _Handler(WSGIRequestHandler):
    """No request log lines; every open connection known to the server, so close() can cut them all."""

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:  # type: ignore[attr-defined]
            self.server.connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        with self.server.connections_lock:  # type: ignore[attr-defined]
            self.server.connections.discard(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class ServerThread:
    """A WSGI app served on host:port (port 0 picks a free one) until close()."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_Handler)
        self._server.daemon_threads = True
        self._server.connections = set()  # type: ignore[attr-defined]
        self._server.connections_lock = threading.Lock()  # type: ignore[attr-defined]
        self.app = app
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        with self._server.connections_lock:  # type: ignore[attr-defined]
            open_connections = list(self._server.connections)  # type: ignore[attr-defined]
        for connection in open_connections:  # keep-alive clients: the server is gone for them too
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(app: Any, host: str, port: int, *, threads: int = 8) -> None:
    """Serve app with waitress until interrupted (the `run` and `bank` commands)."""
    import waitress

    waitress.serve(app, host=host, port=port, threads=threads, ident="selfcheckout-payments")
