"""The shopper's phone as a virtual card on vsmartcard's vpcd: what the demo, the reference phone and the
tests tap on a PC/SC reader when there is no real phone.

vpcd is the server; a card is a TCP client. Connecting is placing the phone on the reader, closing is
lifting it. Every message both ways is a 2-byte big-endian length and a payload; a 1-byte payload from
vpcd is a control code, a longer one a command APDU answered with data + SW1 SW2.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time

from drivers.errors import DeviceUnavailable
from drivers.nfc_applet import CardApplet, CardHandler

log = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963  # the reader "Virtual PCD 00 00"; 35964 is "... 00 01"

# What a PC/SC reader reports for an ISO 14443-4 card without historical bytes, as phones in HCE are.
PHONE_ATR = bytes.fromhex("3B 80 80 01 01")

_POWER_OFF, _POWER_ON, _RESET, _SEND_ATR = 0, 1, 2, 4
_CONNECT_RETRY_S = 0.02
_HANDLER_GRACE_S = 2.0  # remove() waits this long for a handler answering a command to finish


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        # vpcd writes the length and the APDU separately without TCP_NODELAY: a delayed ACK from us
        # would hold the second write back about 40 ms. QUICKACK is not sticky, so set it every time.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("vpcd closed the connection")
        data += chunk
    return bytes(data)


class VirtualCard:
    """A phone for vpcd; a handler gets the standard CardApplet, a CardApplet is used as it is."""

    def __init__(
        self,
        phone: CardHandler | CardApplet,
        *,
        host: str = VPCD_HOST,
        port: int = VPCD_PORT,
        atr: bytes = PHONE_ATR,
    ) -> None:
        self.applet = phone if isinstance(phone, CardApplet) else CardApplet(phone)
        self.host = host
        self.port = port
        self._atr = atr
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Set while a command is being answered: the handler may have finished its work (and woken whoever
        # waits for it) before the answer is on the wire.
        self._answering = threading.Condition(self._lock)
        self._busy = False

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def __enter__(self) -> VirtualCard:
        self.insert()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def insert(self, timeout_s: float = 2.0) -> None:
        """Place the phone on the reader, retrying while vpcd is not listening yet (pcscd starting)."""
        if self.inserted:
            return
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=timeout_s)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise DeviceUnavailable(f"vpcd at {self.host}:{self.port}: {exc}") from exc
                time.sleep(_CONNECT_RETRY_S)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.applet.reset()
        with self._lock:
            self._sock = sock
            self._thread = threading.Thread(
                target=self._serve, args=(sock,), name=f"vpcd-card:{self.port}", daemon=True
            )
            self._thread.start()

    def remove(self) -> None:
        """Lift the phone. Safe from inside the handler: the command it is answering then gets nothing."""
        with self._lock:
            sock, self._sock = self._sock, None
            thread = self._thread
        if sock is None:
            return
        with contextlib.suppress(OSError):  # vpcd may have closed its side already
            sock.shutdown(socket.SHUT_RDWR)
        if thread is not None and thread is not threading.current_thread():
            thread.join(_HANDLER_GRACE_S)
            if thread.is_alive():
                log.warning("card handler on port %d still busy after the phone was lifted", self.port)

    def lift_once_answered(self, timeout_s: float = _HANDLER_GRACE_S) -> None:
        """Lift the phone once the command being answered got its answer, as a shopper does who lifts it
        when the screen shows the result: a handler that finished its work has not sent the answer yet."""
        with self._answering:
            self._answering.wait_for(lambda: not self._busy, timeout_s)
        self.remove()

    close = remove

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                (size,) = struct.unpack(">H", _recv_exact(sock, 2))
                payload = _recv_exact(sock, size)
                if size == 1:
                    if payload[0] == _SEND_ATR:
                        self._send(sock, self._atr)
                    elif payload[0] in (_POWER_OFF, _POWER_ON, _RESET):
                        self.applet.reset()
                    continue
                with self._lock:
                    self._busy = True
                try:
                    response = self.applet.process(payload)
                    if self._sock is not sock:
                        return  # lifted while answering
                    self._send(sock, response)
                finally:
                    with self._answering:
                        self._busy = False
                        self._answering.notify_all()
        except (OSError, EOFError) as exc:
            if self._sock is sock:
                log.info("virtual card on port %d dropped by vpcd: %s", self.port, exc)
        finally:
            sock.close()
            with self._lock:
                if self._sock is sock:
                    self._sock = None

    @staticmethod
    def _send(sock: socket.socket, payload: bytes) -> None:
        sock.sendall(struct.pack(">H", len(payload)) + payload)
