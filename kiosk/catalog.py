"""The kiosk's catalog: the payment system's signed feed, the same prices the phones and the gates use.

Why the feed and not a CSV import like the lane's: a kiosk prices the list the shopper's phone will sign
and the gate will check against its own catalog, which the same feed fills. One source means the kiosk
never proposes a price the gate would deny as `price_mismatch`, and a price change reaches the kiosk, the
phones and the gates alike. Every page is verified before anything is used (a trusted PS key, this store,
the nonce just sent, the version asked from: gate.sync.verify_feed); a feed that fails leaves the catalog
as it was and is tried again at the next refresh. The store's GS1 layouts (which prefixes embed a weight or
a price) come whole on every page, so the kiosk splits a scale's label exactly as the gates do.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Mapping

import requests

from gate.barcodes import Layout
from gate.catalog import MemoryCatalog, PriceChange, Product
from gate.errors import ProtocolError
from gate.protocol.feed import Gs1Entry
from gate.protocol.keys import TrustedKeys
from gate.sync import MAX_PAGES, verify_feed
from kiosk.errors import CatalogUnavailable


class FeedCatalog:
    """Products and their prices from the PS feed, held in memory; refresh() pulls what changed."""

    def __init__(
        self,
        url: str,
        *,
        trusted: TrustedKeys,
        store_id: str,
        currency: str,
        session: requests.Session | None = None,
        timeout_s: float = 5.0,
        clock: Callable[[], float],
    ) -> None:
        self._url = url.rstrip("/")
        self._trusted = trusted
        self._store_id = store_id
        self._currency = currency
        self._session = session or requests.Session()
        self._timeout_s = timeout_s
        self._clock = clock
        self._catalog = MemoryCatalog()
        self._layouts: dict[str, Gs1Entry] = {}
        self._lock = threading.Lock()
        self.version = 0
        self.loaded = False

    def close(self) -> None:
        self._session.close()

    def refresh(self) -> set[str]:
        """Pull every page after our version; the catalog keys whose product or price changed."""
        since, changed, pages = self.version, set(), []
        for _ in range(MAX_PAGES):
            nonce = os.urandom(32)
            try:
                response = self._session.get(
                    f"{self._url}/v1/feed",
                    params={"since": since, "nonce": nonce.hex()},
                    timeout=self._timeout_s,
                )
                response.raise_for_status()
                raw = base64.b64decode(response.json()["feed"], validate=True)
                feed = verify_feed(
                    raw, trusted=self._trusted, store_id=self._store_id, since=since, nonce=nonce
                )
            except (requests.RequestException, ValueError, KeyError, TypeError, ProtocolError) as exc:
                raise CatalogUnavailable(f"catalog feed: {type(exc).__name__}: {str(exc)[:200]}") from exc
            pages.append(feed)
            if feed.version >= feed.latest or feed.version == since:
                since = feed.version
                break
            since = feed.version
        with self._lock:
            for feed in pages:
                for p in feed.prices:
                    change = PriceChange(
                        p.code, p.name, p.category, p.unit, p.price, p.currency, p.valid_from
                    )
                    self._catalog.add(change)
                    changed.add(change.checked().code)
            if pages:
                self._layouts = {entry.prefix: entry for entry in pages[-1].gs1}
            self.version = since
            self.loaded = True
        return changed

    def layouts(self) -> Mapping[str, Layout]:
        """The store's GS1 layouts by prefix, as the last verified page listed them."""
        return self._layouts

    def products(self, keys: set[str]) -> dict[str, Product]:
        """The products of these catalog keys at their price now (none in force yet: no price)."""
        with self._lock:
            return self._catalog.products(keys, now=self._clock(), grace_s=0, currency=self._currency)
