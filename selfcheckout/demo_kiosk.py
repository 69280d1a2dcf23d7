"""The kiosk in the demo: the real KioskService on a pseudo-terminal scanner and an in-process reader, and a
shopper who scans there instead of on the phone.

No apt package is needed: the scanner is an `os.openpty()` pair (the kiosk opens the terminal end as its
serial port, the demo writes scans into the other), the reader the same in-process NFC transport as the
demo's lane. `open_kiosk` is what `make demo ARGS=--serve` keeps running for a person: its `url` is the
kiosk's screen.
"""

from __future__ import annotations

import os
import time
import tty
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from drivers.nfc_inprocess import InProcessReader
from kiosk import config as kiosk_config
from kiosk.service import KioskService
from payments.local import LocalStack
from phone.kiosk_card import KioskCard
from phone.terminal import Phone


class DemoKiosk:
    """The running kiosk and the two things a shopper does to it: scan, and tap a phone."""

    def __init__(self, service: KioskService, reader: InProcessReader, feed_fd: int) -> None:
        self.service = service
        self.reader = reader
        self._feed_fd = feed_fd

    @property
    def url(self) -> str:
        return self.service.url

    @property
    def kiosk(self) -> Any:
        return self.service.kiosk

    def scan(self, code: str, timeout_s: float = 5.0) -> bool:
        """A scan line on the scanner's serial port; True once the screen took it."""
        seen = self.kiosk.version
        os.write(self._feed_fd, code.encode() + b"\r")
        return _until(lambda: self.kiosk.version != seen, timeout_s)

    def tap(self, card: KioskCard, until: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        """The phone on the kiosk's reader until `until` holds (or the time is up), then lifted."""
        self.reader.place(card)
        try:
            return _until(until, timeout_s)
        finally:
            self.reader.lift()


def _until(ready: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@contextmanager
def open_kiosk(folder: Path, stack: LocalStack, ps_key_file: Path, *, port: int = 0) -> Iterator[DemoKiosk]:
    """kiosk-01 of the demo's store, its screen on 127.0.0.1:`port` (0: a free port)."""
    with ExitStack() as exits:
        feed_fd, scanner_fd = os.openpty()
        tty.setraw(scanner_fd)
        exits.callback(os.close, feed_fd)
        exits.callback(os.close, scanner_fd)
        config_path = folder / "kiosk.toml"
        config_path.write_text(
            kiosk_config.example_with(
                kiosk={
                    "store_id": stack.store_id,
                    "currency": stack.currency,
                    "state_dir": str(folder / "kiosk"),
                },
                payments={"url": stack.url, "public_key_files": [str(ps_key_file)]},
                scanner={"port_url": os.ttyname(scanner_fd), "debounce_ms": 0},
                reader={"name_pattern": "in-process"},
                session={"done_display_s": 5.0},
            )
        )
        reader = exits.enter_context(InProcessReader(name="kiosk"))
        config = kiosk_config.load(config_path)
        service = exits.enter_context(KioskService(config, reader=reader, screen_port=port))
        yield DemoKiosk(service, reader, feed_fd)


def kiosk_shopper(kiosk: DemoKiosk, phone: Phone, name: str, codes: list[str], say: Any, money: Any) -> bool:
    """A shopper at the kiosk: tap (the hold is read), scan, tap again, confirm on the phone. True once the
    kiosk verified the signed list."""
    k = kiosk.kiosk
    card = phone.kiosk_card()
    if not kiosk.tap(card, lambda: k.state == "shopping"):
        say("kiosk", f"{name}'s first tap: {k.notice.code if k.notice else 'no answer'}")
        return False
    say("kiosk", f"{name} taps the phone: hold {money(k.hold_amount)} read and shown; scan your goods")
    for code in codes:
        kiosk.scan(code)
        line = next((line for line in k.lines if line.id == k.last_line), None)
        shown = (
            f"{line.name} x{line.qty} {money(line.total)}" if line else (k.notice.code if k.notice else "?")
        )
        say("kiosk", f"scan {code}: {shown:<22} total {money(k.total)} of {money(k.hold_amount)}")
    card = phone.kiosk_card()

    def confirmed() -> bool:
        if card.shown.is_set() and card.proposal is not None and not card.delivered.is_set():
            shown = card.proposal
            lines = ", ".join(f"{line.qty} x {line.name}" for line in phone.kiosk_lines(shown))
            say(name, f"phone shows the kiosk's list ({lines}: {money(shown.total)}); {name} confirms")
            card.confirm(shown.hash())
            card.shown.clear()  # said once
        return k.state == "done"

    if not kiosk.tap(card, confirmed):
        say("kiosk", f"{name}'s finishing tap: {k.notice.code if k.notice else 'no answer'}")
        return False
    say("kiosk", f"{name}'s signed list verified ({money(k.signed.total)}): walk to the exit")
    return True
