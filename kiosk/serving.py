"""The kiosk screen's HTTP server: waitress on a thread of its own, writes sent at once (events must not
wait in a buffer), a port already taken one KioskError line."""

from __future__ import annotations

import threading
import warnings
from typing import Any

import waitress
from waitress import wasyncore
from waitress.task import ThreadedTaskDispatcher

from kiosk.errors import KioskError


class ScreenServer:
    """A WSGI app on host:port (0: a free port) until close(); a context manager."""

    def __init__(self, app: Any, host: str, port: int, *, threads: int = 6) -> None:
        self._map: dict[int, Any] = {}
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(threads)
        try:
            with warnings.catch_warnings():
                # send_bytes=1 wakes the server loop on every write, so an event leaves at once instead of
                # at the loop's next poll; waitress warns that the option will go, and has no other one.
                warnings.simplefilter("ignore", DeprecationWarning)
                self._server = waitress.create_server(
                    app, map=self._map, _dispatcher=dispatcher, host=host, port=port, threads=threads,
                    ident="selfcheckout-kiosk", send_bytes=1, clear_untrusted_proxy_headers=True,
                )  # fmt: skip
        except OSError as exc:
            wasyncore.close_all(self._map)
            dispatcher.shutdown()
            raise KioskError(f"kiosk screen: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.port = int(self._server.effective_port)  # type: ignore[union-attr]
        self.url = f"http://{host}:{self.port}"
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"kiosk-screen-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.05, map=self._map, count=1)
        finally:
            self._server.task_dispatcher.shutdown(timeout=1)  # type: ignore[union-attr]
            wasyncore.close_all(self._map)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._server.pull_trigger()  # type: ignore[union-attr]
        self._thread.join(timeout=10)

    def __enter__(self) -> ScreenServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
