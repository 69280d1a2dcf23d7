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

Connections, threads and WAL checkpoints: see `database`.
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
