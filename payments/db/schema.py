"""The payment system's schema, written once for SQLite and PostgreSQL: migrations applied in order at start.

The money rules are in the database as well as in the code, so a bug or a hand-made UPDATE cannot leave
the books impossible: balances, reservations and debts are never negative, a hold never gives back or
takes more than it held, a settled charge is paid exactly (amount = stored value + bank + debt), and a
charge id is stored once (its primary key). Type names in braces are the only thing a dialect fills in
(payments/db/engines.py); everything else is the same SQL on both. Never edit a released migration: add
the next one.
"""

from __future__ import annotations

M001 = (
    "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # One row per counter; `feed_version` is taken under the row's lock, so feed versions commit in order
    # and a gate reading "everything after version n" never misses one committed late.
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value {int} NOT NULL)",
    "INSERT INTO counters (name, value) VALUES ('feed_version', 0)",
    """
    CREATE TABLE shoppers (
        shopper TEXT PRIMARY KEY,
        public_key {blob} NOT NULL,
        key_id TEXT NOT NULL,
        bank_account TEXT,
        currency TEXT NOT NULL,
        balance {int} NOT NULL CHECK (balance >= 0),
        reserved {int} NOT NULL CHECK (reserved >= 0 AND reserved <= balance),
        debt {int} NOT NULL CHECK (debt >= 0),
        created {int} NOT NULL
    )
    """,
    """
    CREATE TABLE top_ups (
        reference TEXT PRIMARY KEY,
        shopper TEXT NOT NULL REFERENCES shoppers (shopper),
        amount {int} NOT NULL CHECK (amount > 0),
        debt_repaid {int} NOT NULL CHECK (debt_repaid >= 0 AND debt_repaid <= amount),
        at {int} NOT NULL
    )
    """,
    """
    CREATE TABLE gates (
        gate TEXT PRIMARY KEY,
        public_key {blob} NOT NULL,
        key_id TEXT NOT NULL UNIQUE,
        active {int} NOT NULL CHECK (active IN (0, 1)),
        enrolled {int} NOT NULL,
        revoked {int}
    )
    """,
    """
    CREATE TABLE holds (
        hold TEXT PRIMARY KEY,
        request TEXT NOT NULL,
        request_sha TEXT NOT NULL,
        shopper TEXT NOT NULL REFERENCES shoppers (shopper),
        currency TEXT NOT NULL,
        estimate {int} NOT NULL CHECK (estimate > 0),
        stored_value {int} NOT NULL CHECK (stored_value >= 0),
        bank {int} NOT NULL CHECK (bank >= 0),
        state TEXT NOT NULL CHECK (state IN ('placing', 'open', 'releasing', 'closed', 'failed')),
        reason TEXT,
        voucher {blob},
        status {int},
        answer TEXT,
        bank_cleanup {int} NOT NULL DEFAULT 0,
        issued {int} NOT NULL,
        expires {int},
        charge TEXT,
        sv_captured {int} NOT NULL DEFAULT 0 CHECK (sv_captured >= 0),
        sv_released {int} NOT NULL DEFAULT 0 CHECK (sv_released >= 0),
        bank_captured {int} NOT NULL DEFAULT 0 CHECK (bank_captured >= 0),
        bank_released {int} NOT NULL DEFAULT 0 CHECK (bank_released >= 0),
        closed {int},
        CHECK (sv_captured + sv_released <= stored_value),
        CHECK (bank_captured + bank_released <= bank)
    )
    """,
    "CREATE UNIQUE INDEX holds_request ON holds (request) WHERE state != 'failed'",
    "CREATE INDEX holds_state ON holds (state, expires)",
    # state: received (recorded by intake, nothing moved yet), capture_pending (stored value taken, the
    # bank part owed), releasing (captured; the hold's rest to give back), settled (notice signed).
    # A settlement worker that claims a charge writes its claim and a lease; a claim whose lease ran out
    # (the worker died) is taken by another worker, and the bank's idempotency by charge id makes the
    # repeated call harmless.
    """
    CREATE TABLE charges (
        charge TEXT PRIMARY KEY,
        body {blob} NOT NULL,
        body_sha TEXT NOT NULL,
        gate TEXT NOT NULL,
        hold TEXT NOT NULL,
        shopper TEXT NOT NULL,
        amount {int} NOT NULL CHECK (amount >= 0),
        currency TEXT NOT NULL,
        decided {int} NOT NULL,
        received {int} NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('received', 'capture_pending', 'releasing', 'settled')),
        from_hold {int} NOT NULL DEFAULT 0,
        stored_value {int} NOT NULL DEFAULT 0 CHECK (stored_value >= 0),
        bank_planned {int} NOT NULL DEFAULT 0 CHECK (bank_planned >= 0),
        bank {int} NOT NULL DEFAULT 0 CHECK (bank >= 0 AND bank <= bank_planned),
        bank_ref TEXT NOT NULL DEFAULT '',
        debt {int} NOT NULL DEFAULT 0 CHECK (debt >= 0),
        released {int} NOT NULL DEFAULT 0,
        notice {blob},
        answer TEXT,
        settled {int},
        last_error TEXT,
        claim TEXT,
        lease_until {int} NOT NULL DEFAULT 0,
        CHECK (state != 'settled' OR amount = stored_value + bank + debt)
    )
    """,
    "CREATE INDEX charges_queue ON charges (state, lease_until)",
    "CREATE INDEX charges_hold ON charges (hold)",
    """
    CREATE TABLE debts (
        charge TEXT PRIMARY KEY,
        shopper TEXT NOT NULL,
        hold TEXT NOT NULL,
        amount {int} NOT NULL CHECK (amount > 0),
        repaid {int} NOT NULL CHECK (repaid >= 0 AND repaid <= amount),
        created {int} NOT NULL,
        paid {int}
    )
    """,
    "CREATE INDEX debts_shopper ON debts (shopper, paid)",
    """
    CREATE TABLE entries (
        id {serial},
        at {int} NOT NULL,
        kind TEXT NOT NULL,
        shopper TEXT,
        hold TEXT,
        charge TEXT,
        ref TEXT,
        amount {int} NOT NULL CHECK (amount > 0)
    )
    """,
    "CREATE INDEX entries_kind ON entries (kind)",
    """
    CREATE TABLE deny (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        reason TEXT,
        since {int} NOT NULL,
        PRIMARY KEY (kind, key)
    )
    """,
    "CREATE TABLE feed_log (version {int} PRIMARY KEY, kind TEXT NOT NULL, key TEXT, at {int} NOT NULL)",
    "CREATE INDEX feed_log_key ON feed_log (kind, key)",
    """
    CREATE TABLE prices (
        version {int} PRIMARY KEY,
        code TEXT NOT NULL,
        name TEXT,
        category TEXT,
        unit TEXT,
        price {int} NOT NULL CHECK (price >= 0),
        currency TEXT NOT NULL,
        valid_from {int} NOT NULL
    )
    """,
    "CREATE INDEX prices_code ON prices (code, valid_from)",
)

# The database instances a gate told us of (at enrolment and when it took back its passes): a gate seen
# with a new instance had its database made anew (docs/payments-api.md, "Recovery").
M002 = (
    """
    CREATE TABLE gate_instances (
        gate TEXT NOT NULL,
        instance TEXT NOT NULL,
        first_seen {int} NOT NULL,
        recovered {int},
        PRIMARY KEY (gate, instance)
    )
    """,
)

# The settlement queue's index holds only the charges not yet settled: a chain's table grows by every
# charge ever made, the queue stays as short as the work left, and settling a charge takes it out.
M003 = (
    "DROP INDEX charges_queue",
    "CREATE INDEX charges_open ON charges (lease_until, received) WHERE state != 'settled'",
)

MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("m001_schema", M001),
    ("m002_gate_instances", M002),
    ("m003_open_charges_index", M003),
)
