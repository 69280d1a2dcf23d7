"""Serving the payment system and the simulated bank with cheroot: in the foreground for the commands, in a
background thread for tests, benchmarks and demos.

Why cheroot here while the panel and the kiosk screen run waitress: a payment system holds a kept-alive
connection from every gate of the chain and one for each bank call its settlement workers make at once.
waitress's single I/O loop walks every open connection in Python at each event, so its cost per request
grows with the connections open (the simulated bank at 50 ms a call: 2.3 ms of CPU a request with 64
connections open, 0.7 ms with 8). cheroot waits on idle connections with epoll (selectors) and hands a
request that arrives to a worker thread: 0.8 ms with 64 open, so settlement is bound by the bank's time, not
by our server's.

`ServerThread` runs any WSGI app on a real TCP port (port 0 picks a free one) with the same server a store
runs. It is a context manager; `close()` stops it, cuts the connections still open (so a keep-alive client
sees the server gone, as after a crash) and frees the port. `serve()` runs in the foreground until SIGTERM
(systemd's stop) or Ctrl-C, then stops gracefully: no new connections, the requests in flight answered.
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import threading
from typing import Any

from cheroot import wsgi

from payments.errors import PaymentsError

# Connections waiting to be accepted: a store's gates reconnect together after an outage, and the kernel's
# default backlog of cheroot's (5) would make them wait for SYN retries, a second or more each.
LISTEN_BACKLOG = 1024
# Seconds a connection may sit idle (kept alive, or a client slow to send its request) before it is closed.
IDLE_TIMEOUT_S = 30


class _Server(wsgi.Server):
    """cheroot's server, with SO_REUSEADDR also on a port picked by the kernel (port 0): a test stops a
    payment system and serves it again on the same port, which the connections it had, waiting out
    TIME_WAIT, would hold otherwise. An explicit port gets it from cheroot itself."""

    @classmethod
    def prepare_socket(cls, *args: Any, **kwargs: Any) -> socket.socket:
        sock = super().prepare_socket(*args, **kwargs)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return sock


def _server(app: Any, host: str, port: int, threads: int, max_body: int) -> wsgi.Server:
    server = _Server(
        (host, port),
        app,
        numthreads=threads,
        server_name="selfcheckout",
        request_queue_size=LISTEN_BACKLOG,
        timeout=IDLE_TIMEOUT_S,
        shutdown_timeout=5,
    )
    # A body over this is refused (413) from its Content-Length, before any of it is read.
    server.max_request_body_size = max_body
    return server


class ServerThread:
    """A WSGI app served on host:port until close()."""

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, *, threads: int = 8, max_body: int = 1 << 30
    ) -> None:
        self.app = app
        self.host = host
        self._server = _server(app, host, port, threads, max_body)
        self._server.prepare()  # bound and listening once this returns
        self.port = int(self._server.bind_addr[1])
        self.url = f"http://{host}:{self.port}"
        self._closed = False
        self._thread = threading.Thread(target=self._server.serve, name=f"server-{self.port}", daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.stop()
        self._thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(
    app: Any, host: str, port: int, *, threads: int = 8, banner: str = "", max_body: int = 1 << 30
) -> str | None:
    """Serve app until SIGTERM or SIGINT (the `run` and `bank` commands); print banner once bound.

    The signal (systemd's stop, or Ctrl-C) stops the server gracefully: it takes no new connection, the
    requests in flight get their answers (up to the server's shutdown_timeout, 5 s), and then this returns
    the signal's name, so the command can stop what it runs beside the server before the process exits 0.
    cheroot's `stop()` waits for the loop `serve()` runs to end, and the handler runs in that loop's thread
    (the main one), so the handler hands the stop to a thread of its own. Another signal while the server
    stops is ignored; once this returns, the handlers it replaced are back, so a second SIGTERM or Ctrl-C
    during the command's own shutdown ends the process at once, as systemd's SIGKILL after TimeoutStopSec
    does. Called from another thread, where no handler can be set, it serves until interrupted.

    A port another process holds, or an address not on this machine, is one PaymentsError line naming them.
    `max_body`: a larger body is refused (413) from its Content-Length, before the app sees any of it.
    """
    logging.basicConfig()  # the server's own errors reach the journal
    server = _server(app, host, port, threads, max_body)
    try:
        server.prepare()
    except OSError as exc:
        # cheroot says which addresses it tried, each with its error: the last one is the reason.
        reasons = re.findall(r"\[Errno \d+\] ([^)]*)", str(exc))
        reason = reasons[-1] if reasons else exc.strerror or str(exc)
        raise PaymentsError(f"cannot listen on {host}:{port}: {reason}", code="listen") from exc
    stopping: list[tuple[str, threading.Thread]] = []

    def stop(signum: int, _frame: Any) -> None:
        if not stopping:
            thread = threading.Thread(target=server.stop, name="server-stop", daemon=True)
            stopping.append((signal.Signals(signum).name, thread))
            thread.start()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    if banner:
        print(banner, flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:  # Ctrl-C where no handler could be set
        pass
    finally:
        for _, thread in stopping:
            thread.join()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stopping[0][0] if stopping else None
