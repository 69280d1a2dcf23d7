"""The kiosk put together: catalog, session, scanner, reader, screen, and the timers that watch them.

    with PhoneReader(config.reader.name_pattern) as reader, KioskService(config, reader=reader) as kiosk:
        ...  # until SIGTERM (kiosk.cli)

Hardware is injected: the service takes a reader (PC/SC's PhoneReader, or the in-process one) and opens
the scanner from the config's port URL, so the tests and the demo run the very same code on a socat pty
and vpcd. Three threads besides the screen's server: the tap loop (kiosk.taps), the scanner's reader
(drivers.scanner), and a one-second watch that runs the idle timer, notices the scanner coming and going,
and refreshes the catalog from the payment system's feed.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from drivers.scanner import BarcodeScanner, Scan, ScannerNotice
from gate.protocol.keys import TrustedKeys, read_public_key
from kiosk.catalog import FeedCatalog
from kiosk.config import KioskConfig
from kiosk.errors import CatalogUnavailable
from kiosk.marker import SessionMarker
from kiosk.serving import ScreenServer
from kiosk.session import Kiosk
from kiosk.taps import Reader, TapLoop
from kiosk.web import close_app, create_app

log = logging.getLogger(__name__)

# A line the scanner sent that is no barcode (torn, garbage, too long): the shopper scans again.
LINE_REFUSALS = frozenset({"too-long", "invalid-bytes", "missing-aim-prefix", "partial-line-lost"})
WATCH_S = 1.0  # the watch's period: idle timer, scanner state, catalog refresh


class KioskService:
    """Everything the kiosk runs, started by start() and stopped by close() (a context manager)."""

    def __init__(
        self,
        config: KioskConfig,
        *,
        reader: Reader,
        scanner_port: str | None = None,
        screen_port: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        k = config.kiosk
        trusted = TrustedKeys([read_public_key(path) for path in config.payments.public_key_files])
        self.catalog = FeedCatalog(
            config.payments.url,
            trusted=trusted,
            store_id=k.store_id,
            currency=k.currency,
            timeout_s=config.payments.timeout_s,
            clock=clock,
        )
        s = config.session
        self.kiosk = Kiosk(
            kiosk_id=k.kiosk_id,
            store_id=k.store_id,
            currency=k.currency,
            catalog=self.catalog,
            attendant_categories=config.policy.attendant_categories,
            blocked_codes=config.policy.blocked_codes,
            idle_warning_s=s.idle_warning_s,
            idle_clear_s=s.idle_clear_s,
            done_display_s=s.done_display_s,
            languages=tuple(config.screen.languages),
            marker=SessionMarker(k.state_dir),
        )
        self.taps = TapLoop(
            self.kiosk, reader, trusted=trusted, confirm_timeout_s=s.confirm_timeout_s, clock=clock
        )
        self._scanner_port = scanner_port or config.scanner.port_url
        self._screen_port = config.screen.port if screen_port is None else screen_port
        self.scanner: BarcodeScanner | None = None
        self.server: ScreenServer | None = None
        self.app = create_app(self.kiosk)
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watch_loop, name="kiosk-watch", daemon=True)
        self._next_refresh = 0.0

    def __enter__(self) -> KioskService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def start(self) -> KioskService:
        """Load the catalog (a kiosk without it says so on screen and keeps trying), then serve."""
        self._refresh_catalog()
        self.server = ScreenServer(self.app, self.config.screen.host, self._screen_port)
        self.scanner = BarcodeScanner(
            **{**dataclasses.asdict(self.config.scanner), "port_url": self._scanner_port},
            on_scan=self._on_scan,
            on_notice=self._on_scanner_notice,
        )
        self.taps.start()
        self._watch.start()
        return self

    def _on_scan(self, scan: Scan) -> None:
        self.kiosk.scan(scan.code)

    def _on_scanner_notice(self, notice: ScannerNotice) -> None:
        if notice.kind in LINE_REFUSALS:
            self.kiosk.problem("invalid_scan", "error")
        elif notice.kind == "port-lost":
            self.kiosk.scanner_status(False)
        elif notice.kind == "reconnected":
            self.kiosk.scanner_status(True)

    def _refresh_catalog(self) -> None:
        self._next_refresh = time.monotonic() + self.config.session.catalog_refresh_s
        try:
            changed = self.catalog.refresh()
        except CatalogUnavailable as exc:
            log.warning("%s", exc)
            self.kiosk.catalog_status(False)
            self._next_refresh = time.monotonic() + min(5.0, self.config.session.catalog_refresh_s)
            return
        self.kiosk.catalog_status(True)
        self.kiosk.catalog_changed(changed)

    def refresh_catalog(self) -> None:
        """Pull the feed now (the watch does it every catalog_refresh_s)."""
        self._refresh_catalog()

    def _watch_loop(self) -> None:
        while not self._stop.wait(WATCH_S):
            try:
                self.kiosk.tick()
                if self.scanner is not None:
                    self.kiosk.scanner_status(bool(self.scanner.health()["connected"]))
                if time.monotonic() >= self._next_refresh:
                    self._refresh_catalog()
            except Exception:  # the watch must outlive any one failure; it is logged with its traceback
                log.exception("kiosk watch")

    def alive(self) -> bool:
        """The tap loop and the watch are running (what the systemd watchdog vouches for)."""
        return self.taps.alive() and self._watch.is_alive()

    def close(self) -> None:
        self._stop.set()
        self.kiosk.close()
        self.taps.stop()
        if self._watch.is_alive():
            self._watch.join(5.0)
        if self.scanner is not None:
            self.scanner.close()
        if self.server is not None:
            self.server.close()
        self.catalog.close()
        close_app(self.app)
