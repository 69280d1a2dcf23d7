"""sd_notify never stalls the lane: a systemd socket nobody reads drops messages instead of blocking."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from gate.notify import Notifier


def test_a_full_notify_socket_drops_messages_instead_of_blocking(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        notifier = Notifier({"NOTIFY_SOCKET": path})
        sent: list[bool] = []
        worker = threading.Thread(
            target=lambda: sent.extend(notifier.status(f"n{i}") or True for i in range(500))
        )
        worker.start()
        worker.join(5)
        notifier.close()
        assert not worker.is_alive(), "status() blocked on a socket nobody reads"
        assert len(sent) == 500
        first = server.recv(4096)
    assert first == b"STATUS=n0"


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert notifier.send("READY=1") is False
    assert notifier.watchdog_interval_s is None
