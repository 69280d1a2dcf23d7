"""The gate's local store: SQLite through sqlite-utils, durable before the gate opens.

What it holds: the catalog with its price history, used list ids, consumed holds, the payment system's deny
lists, decision events (with reasons and per-step timings), and the charge outbox the forwarder drains.

Modules: `database` (connections, transactions, checkpoints), `catalog`, `decisions` (the pass
transaction, denials, lane events), `outbox`, `feed`, `peers` (what the lanes of one store tell each
other), `audits` (attendants' re-scans), `records` (what reads return), `migrations`, `files` (init,
backup, restore, the lane lock), `retention` (pruning), `recovery`
(passes taken back after a database was made anew).

Durability. Every connection runs in WAL mode with `PRAGMA synchronous=FULL`, so a COMMIT returns only once
the WAL is on disk. `record_pass` writes the facts of a pass (list used, hold consumed, event, outbox
charge, the record for the other lanes) in ONE `BEGIN IMMEDIATE` transaction: after a power cut either all
are there or none, and the lane opens the gate only after `record_pass` returned.

Threads. The lane thread and the forwarder thread each get their own connection (one per thread, opened
on first use): with WAL the lane's reads never wait for the forwarder, and writers queue on SQLite's own
lock (busy timeout 5 s). An in-memory store (":memory:", for tests and tools) cannot be shared that way, so
there every thread uses the one connection under a lock.

Checkpoints. SQLite's automatic WAL checkpoint would run inside whichever commit crosses 1000 pages, now and
then adding milliseconds to a pass. It is off; the forwarder thread's writes (settling, retrying, the feed)
checkpoint every CHECKPOINT_EVERY commits instead, off the lane's path. Should the forwarder stall, the lane
checkpoints itself once LANE_CHECKPOINT_AFTER commits are waiting, so the WAL stays bounded.
"""

from __future__ import annotations

from gate.catalog import PriceChange
from gate.legality.check import Backlog, StateFacts
from gate.store.audits import AuditTables
from gate.store.catalog import CatalogTables
from gate.store.database import MissingDatabase, StorageFault, StoreError
from gate.store.decisions import DecisionTables
from gate.store.feed import FeedTables
from gate.store.outbox import OUTBOX_STATES, OutboxTable
from gate.store.peers import OwnPass, PeerTables
from gate.store.records import AuditRecord, Event, ImportResult, LaneEvent, OutboxEntry, PassRecord
from gate.store.recovery import RecoveryTables, ReportedPass
from gate.store.retention import Pruned, RetentionTables

__all__ = [
    "OUTBOX_STATES",
    "AuditRecord",
    "Backlog",
    "Event",
    "GateStore",
    "ImportResult",
    "LaneEvent",
    "MissingDatabase",
    "OutboxEntry",
    "OwnPass",
    "PassRecord",
    "PriceChange",
    "Pruned",
    "ReportedPass",
    "StateFacts",
    "StorageFault",
    "StoreError",
]


class GateStore(
    CatalogTables,
    DecisionTables,
    OutboxTable,
    FeedTables,
    PeerTables,
    AuditTables,
    RetentionTables,
    RecoveryTables,
):
    """The gate's SQLite database. `GateStore(":memory:")` or `GateStore(path)`; a context manager."""
