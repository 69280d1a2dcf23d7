"""Serving the payment system and the simulated bank with waitress: in the foreground for the commands, in
a background thread for tests, benchmarks and demos.

`ServerThread` runs any WSGI app on a real TCP port (port 0 picks a free one) with the same server a store
runs (waitress: keep-alive connections, a pool of worker threads). It is a context manager; `close()`
stops it, cuts the connections still open (so a keep-alive client sees the server gone, as after a
crash) and frees the port.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import waitress
from waitress import wasyncore

from payments.errors import PaymentsError


class ServerThread:
    """A WSGI app served on host:port until close()."""

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, *, threads: int = 8, max_body: int = 1 << 30
    ) -> None:
        self.app = app
        self.host = host
        self._server = waitress.create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="selfcheckout",
            clear_untrusted_proxy_headers=True,
            max_request_body_size=max_body,
        )
        self.port = int(self._server.effective_port)  # type: ignore[union-attr]
        self.url = f"http://{host}:{self.port}"
        self._stop = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._shut = False  # set (under _lock) before the loop's sockets and trigger are closed
        self._thread = threading.Thread(target=self._serve, name=f"server-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        socket_map = self._server._map  # type: ignore[union-attr]
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.05, map=socket_map, count=1)
        finally:  # in this thread, so no channel is closed under the loop's feet
            with self._lock:
                self._shut = True
            self._server.task_dispatcher.shutdown()  # type: ignore[union-attr]
            wasyncore.close_all(socket_map)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        with self._lock:  # wake the loop now, unless it is already closing its trigger
            if not self._shut:
                self._server.pull_trigger()  # type: ignore[union-attr]
        self._thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(
    app: Any, host: str, port: int, *, threads: int = 8, banner: str = "", max_body: int = 1 << 30
) -> None:
    """Serve app with waitress until interrupted (the `run` and `bank` commands); print banner once bound.

    A port another process holds, or an address not on this machine, is one PaymentsError line naming them.
    `max_body`: waitress refuses a larger body (413) while reading it, before the app sees any of it.
    """
    logging.basicConfig()  # waitress's own warnings (a full task queue) reach the journal
    try:
        server = waitress.create_server(
            app, host=host, port=port, threads=threads, ident="selfcheckout", max_request_body_size=max_body
        )
    except OSError as exc:
        raise PaymentsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", code="listen") from exc
    if banner:
        print(banner, flush=True)
    server.run()
