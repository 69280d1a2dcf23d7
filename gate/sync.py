"""Pulling the payment system's feed into the gate: deny lists, holds consumed elsewhere, price changes.

The gate asks `GET /v1/feed?since=<its version>&nonce=<32 random bytes>` and gets a GateFeed signed by
the payment system (gate/protocol/feed.py, docs/payments-api.md "Feed"). It checks the signature against
the trusted payment-system keys of its config, that the feed is for its store, answers its own nonce (so
a recorded feed cannot roll a deny list back) and starts at its version; then it applies each page in one
transaction (GateStore.apply_feed) and asks again until it has the latest version. The page's `gates` (the
store's active gate keys) is kept: phones verify exit receipts with them, and the lanes of the store the
pass records they send each other (gate.peers).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass

import requests

from gate.catalog import PriceChange
from gate.errors import GateError, ProtocolError, SignatureError
from gate.protocol.documents import open_signed
from gate.protocol.feed import GateFeed, Gs1Entry
from gate.protocol.keys import TrustedKeys
from gate.store import GateStore

MAX_PAGES = 200


class SyncError(GateError):
    """The feed could not be fetched or does not verify; the gate keeps what it has and tries later."""


@dataclass(frozen=True)
class SyncResult:
    """What one sync applied: the version reached and how much came in."""

    since: int
    version: int
    pages: int
    deny_holds: int
    deny_shoppers: int
    consumed: int
    prices: int
    gs1: tuple[Gs1Entry, ...] = ()  # the store's GS1 layouts as the payment system signs them for phones


def verify_feed(raw: bytes, *, trusted: TrustedKeys, store_id: str, since: int, nonce: bytes) -> GateFeed:
    """Open and check one feed page; ProtocolError (SignatureError for a bad signature) if it is not good."""
    signed = open_signed(raw, GateFeed)
    if signed.kid not in trusted:
        raise SignatureError(f"the feed is signed by key {signed.kid}, not a trusted payment-system key")
    feed = signed.verify_with(trusted.get(signed.kid))
    if feed.store != store_id:
        raise ProtocolError(f"the feed is for store {feed.store}, this gate is in {store_id}")
    if feed.nonce != nonce:
        raise ProtocolError("the feed does not answer this request's nonce (a replayed feed?)")
    if feed.since != since:
        raise ProtocolError(f"the feed starts at version {feed.since}, asked for {since}")
    return feed


def sync_feed(
    store: GateStore,
    *,
    url: str,
    trusted: TrustedKeys,
    store_id: str,
    session: requests.Session,
    timeout_s: float = 5.0,
    nonce_source: Callable[[int], bytes] = os.urandom,
) -> SyncResult:
    """Bring the gate's deny lists, consumed holds and catalog up to the payment system's latest version."""
    start = since = store.feed_version()
    totals = {"pages": 0, "deny_holds": 0, "deny_shoppers": 0, "consumed": 0, "prices": 0}
    gs1: tuple[Gs1Entry, ...] = ()
    for _ in range(MAX_PAGES):
        nonce = nonce_source(32)
        try:
            response = session.get(
                url.rstrip("/") + "/v1/feed",
                params={"since": since, "nonce": nonce.hex()},
                timeout=timeout_s,
            )
        except requests.RequestException as exc:
            raise SyncError(f"feed: the payment system did not answer ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise SyncError(
                f"feed: the payment system answered {response.status_code}: {response.text[:200]}"
            )
        try:
            raw = base64.b64decode(response.json()["feed"], validate=True)
            feed = verify_feed(raw, trusted=trusted, store_id=store_id, since=since, nonce=nonce)
        except (ValueError, KeyError, TypeError, ProtocolError) as exc:
            raise SyncError(f"feed: refused: {exc}") from exc
        prices = [
            PriceChange(p.code, p.name, p.category, p.unit, p.price, p.currency, p.valid_from)
            for p in feed.prices
        ]
        store.apply_feed(
            feed.version,
            set(feed.deny_holds),
            set(feed.deny_shoppers),
            list(feed.consumed),
            prices,
            gates=feed.gate_keys(),
        )
        totals["pages"] += 1
        totals["deny_holds"] = len(feed.deny_holds)
        totals["deny_shoppers"] = len(feed.deny_shoppers)
        totals["consumed"] += len(feed.consumed)
        totals["prices"] += len(feed.prices)
        gs1 = feed.gs1
        if feed.version >= feed.latest:
            since = feed.version
            break
        if feed.version == since:
            raise SyncError(f"feed: no progress past version {since} (latest {feed.latest})")
        since = feed.version
    return SyncResult(since=start, version=since, gs1=gs1, **totals)


def gs1_mismatch(ours: tuple[Gs1Entry, ...], signed: tuple[Gs1Entry, ...]) -> str:
    """What is wrong when the feed's GS1 layouts are not the lane's own [[barcodes.gs1]] ("" when they are
    the same): phones split price and weight labels by the feed's, this gate by its config's."""
    mine, theirs = sorted(ours, key=_prefix), sorted(signed, key=_prefix)
    if mine == theirs:
        return ""
    return (
        f"the payment system's GS1 layouts ({_layouts(theirs)}) differ from this lane's"
        f" [[barcodes.gs1]] ({_layouts(mine)}): phones split price and weight labels otherwise than"
        " this gate, and their lists are denied; make the two configs the same"
    )


def _prefix(layout: Gs1Entry) -> str:
    return layout.prefix


def _layouts(layouts: list[Gs1Entry]) -> str:
    if not layouts:
        return "none"
    check = {0: "", 1: "+check"}
    return ", ".join(
        f"{g.prefix} {g.kind} {g.item_digits}/{g.value_digits}{check[g.value_check_digit]}" for g in layouts
    )
