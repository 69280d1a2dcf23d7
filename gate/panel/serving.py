"""The panel's HTTP server: waitress on a thread of its own, inside `selfcheckout gate run`.

waitress is the server the payment system runs too (keep-alive, a pool of worker threads, no tracebacks
in answers). Each page listening for live changes holds a worker thread (gate.panel.live caps them), so the
pool is larger than the payment system's. A port already taken is one PanelError line, with nothing left
open behind it.
"""

from __future__ import annotations

import threading
from typing import Any

import waitress
from waitress import wasyncore
from waitress.task import ThreadedTaskDispatcher

from gate.panel.forms import PanelError


class PanelServer:
    """A WSGI app served on host:port (port 0: a free one) until close(); a context manager."""

    def __init__(self, app: Any, host: str, port: int, *, threads: int = 12) -> None:
        self._map: dict[int, Any] = {}
        dispatcher = ThreadedTaskDispatcher()  # ours, so that a failed start can stop its threads
        dispatcher.set_thread_count(threads)
        try:
            self._server = waitress.create_server(
                app,
                map=self._map,
                _dispatcher=dispatcher,
                host=host,
                port=port,
                threads=threads,
                ident="selfcheckout",
                clear_untrusted_proxy_headers=True,
            )
        except OSError as exc:
            wasyncore.close_all(self._map)  # the listening socket and the wake-up pipe, made before bind
            dispatcher.shutdown()
            why = exc.strerror or str(exc)
            raise PanelError(
                f"panel: cannot listen on {host}:{port}: {why} (set [panel] port, or --no-panel)"
            ) from exc
        self._app = app
        self.host = host
        self.port = int(self._server.effective_port)  # type: ignore[union-attr]
        self.url = f"http://{host}:{self.port}" if ":" not in host else f"http://[{host}]:{self.port}"
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"panel-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.05, map=self._map, count=1)
        finally:  # in this thread, so no channel is closed under the loop's feet
            self._server.task_dispatcher.shutdown()  # type: ignore[union-attr]
            wasyncore.close_all(self._map)

    def close(self) -> None:
        """Stop serving, cut open connections and free the port; idempotent."""
        if self._closed:
            return
        self._closed = True
        watch = getattr(self._app, "extensions", {}).get("selfcheckout.watch")
        if watch is not None:
            watch.close()  # ends the open event streams, so their worker threads return
        self._stop.set()
        self._server.pull_trigger()  # type: ignore[union-attr]  # wake the loop now
        self._thread.join(timeout=10)

    def __enter__(self) -> PanelServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
