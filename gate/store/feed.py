"""What the payment system's signed feed brings: deny lists, holds consumed elsewhere, price changes."""

from __future__ import annotations

import time
from collections.abc import Mapping

from gate.catalog import PriceChange
from gate.protocol.keys import key_id
from gate.store.catalog import import_rows
from gate.store.database import CHECKPOINT_EVERY, StoreBase, StoreError


class FeedTables(StoreBase):
    """The applied feed version and the deny lists it replaced."""

    def feed_version(self) -> int:
        with self._read() as db:
            return db.execute("SELECT value FROM meta WHERE key = 'feed_version'").fetchone()[0]

    def feed_applied_at(self) -> int:
        """Unix time the last feed page was applied (0: never)."""
        with self._read() as db:
            return db.execute("SELECT value FROM meta WHERE key = 'feed_applied_at'").fetchone()[0]

    def apply_feed(
        self,
        version: int,
        deny_holds: set[bytes],
        deny_shoppers: set[str],
        consumed_holds: list[bytes],
        prices: list[PriceChange],
        gates: Mapping[str, tuple[bytes, ...]] | None = None,
    ) -> None:
        """One payment-system feed, in one transaction: the deny sets REPLACE the current ones; consumed
        holds (used at other gates) and price changes are added; the store's active gate keys (gate ->
        public keys), when given, replace the ones kept, so a revoked gate's pass records are refused from
        then on. A feed older than the one applied last is refused (StoreError, nothing written): it would
        roll the deny list back."""
        checked = [c.checked("feed price") for c in prices]  # refuse a bad feed before touching anything
        now = time.time()
        with self._write() as db:
            current = db.execute("SELECT value FROM meta WHERE key = 'feed_version'").fetchone()[0]
            if version < current:
                raise StoreError(f"feed version {version} is older than the applied version {current}")
            db.execute("DELETE FROM deny_holds")
            db.conn.executemany("INSERT INTO deny_holds VALUES (?)", [(bytes(h),) for h in deny_holds])
            db.execute("DELETE FROM deny_shoppers")
            db.conn.executemany("INSERT INTO deny_shoppers VALUES (?)", [(s,) for s in deny_shoppers])
            db.conn.executemany(
                "INSERT OR IGNORE INTO consumed_holds (hold, source, list_id, at)"
                " VALUES (?, 'feed', NULL, ?)",
                [(bytes(h), now) for h in consumed_holds],
            )
            if checked:
                import_rows(db, checked, None, 5000)
            if gates is not None:
                db.execute("DELETE FROM gate_keys")
                db.conn.executemany(
                    "INSERT OR REPLACE INTO gate_keys (kid, gate, public_key) VALUES (?, ?, ?)",
                    [(key_id(k), gate, bytes(k)) for gate, ks in gates.items() for k in ks],
                )
            db.execute("UPDATE meta SET value = ? WHERE key = 'feed_version'", [int(version)])
            db.execute("UPDATE meta SET value = ? WHERE key = 'feed_applied_at'", [int(now)])
        self._checkpoint_if(CHECKPOINT_EVERY)

    def gate_keys(self) -> dict[str, tuple[str, bytes]]:
        """The store's active gate keys from the last feed: key id -> (gate, public key)."""
        with self._read() as db:
            rows = db.execute("SELECT kid, gate, public_key FROM gate_keys").fetchall()
        return {kid: (gate, key) for kid, gate, key in rows}

    def deny_lists(self) -> tuple[set[bytes], set[str]]:
        with self._read() as db:
            holds = {r[0] for r in db.execute("SELECT hold FROM deny_holds").fetchall()}
            shoppers = {r[0] for r in db.execute("SELECT shopper FROM deny_shoppers").fetchall()}
        return holds, shoppers
