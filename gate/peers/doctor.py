"""The doctor's look at the other lanes of the store: are their nodes reachable, what each lane last told
this one and how late, and what this lane has not told them yet.

Like every doctor check it never raises and never writes: the database is read through a read-only
connection (a lane may be running), and a node is asked for its NATS INFO line over plain TCP, which is
what a client sees first, without joining the cluster.
"""

from __future__ import annotations

import socket
import sqlite3
import time

from gate.config import LaneConfig
from gate.doctor import Check, _read_only

UNPUBLISHED_AGE_S = 60.0  # a pass not published for longer means the lane cannot reach its store's stream
RECENT_REFUSALS_S = 3600.0


def node_answers(url: str, timeout_s: float = 1.0) -> str:
    """'' when the node at nats://host:port greets like a NATS server, else why not."""
    host, _, port = url.removeprefix("nats://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            greeting = sock.recv(4096)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return "" if greeting.startswith(b"INFO ") else "not a NATS server"


def check_peers(cfg: LaneConfig) -> Check:
    if cfg.peers is None:
        return Check("peers", True, "No [peers] section: this lane is its store's only one.")
    nodes = {url: node_answers(url) for url in cfg.peers.servers}
    down = [f"{url} ({why})" for url, why in nodes.items() if why]
    detail = [f"node {url}: {why or 'reachable'}" for url, why in nodes.items()]
    try:
        with _read_only(cfg.lane.database) as conn:
            facts = _facts(conn)
    except sqlite3.Error as exc:
        return Check("peers", False, "The lane database cannot be read for its peers.", str(exc))
    now = time.time()
    for gate, records, at, lag in facts["lanes"]:
        ago = f"{now - at:.0f} s ago" if at else "never"
        detail.append(f"lane {gate}: {records} record(s), the last {ago}, applied {lag * 1000:.0f} ms after")
    problems = []
    own = cfg.peers.servers[0]
    if nodes[own]:
        problems.append(f"this lane's own node {own} does not answer ({nodes[own]}): start selfcheckout-nats")
    if len(down) * 2 >= len(nodes) and len(nodes) > 1:
        problems.append(
            f"{len(down)} of {len(nodes)} nodes do not answer: the store's stream has no majority"
        )
    if not facts["keys"]:
        problems.append(
            "no gate keys from the payment system's feed yet: other lanes' records cannot be verified"
        )
    unpublished, oldest = facts["unpublished"]
    if unpublished and oldest is not None and now - oldest > UNPUBLISHED_AGE_S:
        problems.append(
            f"{unpublished} pass(es) not yet told to the other lanes, the oldest {now - oldest:.0f} s ago"
        )
    refused = [r for r in facts["refused"] if now - r[0] <= RECENT_REFUSALS_S]
    if refused:
        problems.append(
            f"{len(refused)} record(s) refused in the last hour, the last: {refused[0][1]}: {refused[0][2]}"
        )
    if problems:
        return Check(
            "peers", False, problems[0][0].upper() + problems[0][1:] + ".", "\n".join(problems[1:] + detail)
        )
    return Check(
        "peers",
        True,
        f"{len(nodes) - len(down)} of {len(nodes)} nodes answer; {len(facts['lanes'])} lane(s) heard from; "
        f"{unpublished} pass(es) waiting to be told.",
        "\n".join(detail),
    )


def _facts(conn: sqlite3.Connection) -> dict:
    lanes = conn.execute(
        "SELECT gate, count(*), max(at), (SELECT received_at - at FROM peer_records q WHERE q.gate = r.gate"
        " ORDER BY received_at DESC LIMIT 1) FROM peer_records r GROUP BY gate ORDER BY gate"
    ).fetchall()
    return {
        "lanes": lanes,
        "keys": conn.execute("SELECT count(*) FROM gate_keys").fetchone()[0],
        "unpublished": conn.execute(
            "SELECT count(*), min(at) FROM peer_outbox WHERE published_at IS NULL"
        ).fetchone(),
        "refused": conn.execute(
            "SELECT at, code, detail FROM peer_refused ORDER BY id DESC LIMIT 50"
        ).fetchall(),
    }
