"""A lane's link to the other lanes of its store: publish its passes, apply theirs.

Publishing never delays a shopper. The pass's own transaction (GateStore.record_pass) already holds the
record-to-be in `peer_outbox`, so the gate opens on that commit alone; `notify()` (called right after) only
wakes the publisher thread, which signs each unpublished pass and publishes it, and marks it published once
the transport acked. A lane killed between the commit and the ack publishes the pass again at its next
start: the transport stores one copy by message id, and a lane that applied it already counts a replay.

Applying. Records read from the store's stream (in stream order, from the position after the last one this
store applied) are verified against the store's gate keys from the payment system's signed feed and
applied one transaction each (GateStore.apply_peer_record), so `list_used` and `hold_consumed` hold across
the store. A record that does not verify is kept as a refusal with its reason, never applied.

Catching up. `catch_up()` waits, before the lane decides anything, until this store has applied everything
the stream held at that moment: a lane back from a crash, a partition or a new SD card first learns what
the other lanes passed meanwhile. It gives up after its timeout when no stream is reachable; the lane then
decides on what it knows, within its offline budget, and keeps catching up in the background.

Cut off. While the transport is down no other lane's pass reaches this one; the link then has the payment
system's feed pulled every few seconds (`on_cut_off`), since the feed lists the holds that the other
lanes' forwarded charges consumed.

Reachability. Every lane sends a small heartbeat (unsigned, for display only) each BEAT_EVERY_S; a peer is
reachable while its heartbeats arrive.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from gate.errors import GateError
from gate.peers.record import PassRecord, RecordRefused, new_record, verify_record
from gate.peers.transport import Transport, TransportError
from gate.protocol.keys import SigningKey
from gate.store import GateStore, OwnPass

log = logging.getLogger(__name__)

BEAT_EVERY_S = 1.0
REACHABLE_FOR_S = 3.5  # a peer whose heartbeat is older than this is shown unreachable
RETRY_MIN_S, RETRY_MAX_S = 0.1, 2.0  # the publisher's backoff while the transport cannot take records
CUT_OFF_AFTER_S = 3.0  # the transport down this long: the lane is cut off from the other lanes
CUT_OFF_SYNC_EVERY_S = 5.0  # while cut off, ask for the payment system's feed this often


class PeerLink:
    """Publisher and applier threads between a lane's store and its transport; see the module docstring."""

    def __init__(
        self,
        store: GateStore,
        transport: Transport,
        *,
        key: SigningKey,
        store_id: str,
        gate_id: str,
        publish_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        on_applied: Callable[[PassRecord, str], None] | None = None,
        on_cut_off: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.transport = transport
        self.key = key
        self.store_id = store_id
        self.gate_id = gate_id
        self.publish_timeout_s = publish_timeout_s
        self.clock = clock
        self.on_applied = on_applied
        self.on_cut_off = on_cut_off
        self.cut_off_since: float | None = None  # monotonic; None while the transport is connected
        self._last_cut_off_call = 0.0
        self._inbox: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._applied_seq = 0
        self._applied = threading.Condition()
        self._keys: dict[str, tuple[str, bytes]] = {}
        self._keys_version: int | None = None
        self._beats: dict[str, tuple[float, dict[str, Any]]] = {}
        self._threads: list[threading.Thread] = []
        self.publish_error = ""
        self.caught_up: bool | None = None  # None until catch_up() ran

    # -- life --------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._applied_seq = self.store.peer_cursor()
        self.transport.start(
            from_seq=self._applied_seq + 1, on_record=self._received, on_beat=self._beat_received
        )
        for name, target in (("peers-apply", self._apply_loop), ("peers-publish", self._publish_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._inbox.put(None)
        for thread in self._threads:
            thread.join(5)
        self.transport.close()

    def __enter__(self) -> PeerLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def notify(self) -> None:
        """A pass was committed: publish it now (returns at once; the publisher thread does the work)."""
        self._wake.set()

    def catch_up(self, timeout_s: float) -> bool:
        """Wait until this lane reads the stream and has applied everything it holds now; False if not
        within timeout_s. Reading first: on an empty stream "applied everything" is true at once, and a
        pass published a moment later must still reach this lane."""
        deadline = time.monotonic() + timeout_s
        target = None
        while target is None:
            try:
                if self.transport.status().get("reading"):
                    target = self.transport.last_seq(min(1.0, max(deadline - time.monotonic(), 0.05)))
            except TransportError:
                pass
            if target is None:
                if time.monotonic() >= deadline:
                    self.caught_up = False
                    return False
                time.sleep(0.05)
        with self._applied:
            done = self._applied.wait_for(
                lambda: self._applied_seq >= target, max(deadline - time.monotonic(), 0)
            )
        self.caught_up = bool(done)
        return self.caught_up

    # -- applying ----------------------------------------------------------------------------------------

    def _received(self, stream_seq: int, data: bytes) -> None:
        self._inbox.put((stream_seq, data))

    def _gate_keys(self) -> dict[str, tuple[str, bytes]]:
        """The store's gate keys, read again whenever a new feed was applied (it may revoke a gate)."""
        version = self.store.feed_version()
        if version != self._keys_version:
            self._keys = self.store.gate_keys()
            self._keys_version = version
        return self._keys

    def _apply_loop(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            stream_seq, data = item
            if stream_seq <= self._applied_seq:
                continue  # applied before a restart of the consumer
            while not self._stop.is_set():
                try:
                    self._apply(stream_seq, data)
                    break
                except GateError:
                    log.exception("peers: record %d not applied yet; trying again", stream_seq)
                    self._stop.wait(0.5)
            with self._applied:
                self._applied_seq = max(self._applied_seq, stream_seq)
                self._applied.notify_all()

    def _apply(self, stream_seq: int, data: bytes) -> None:
        now = self.clock()
        try:
            record = verify_record(
                data, store=self.store_id, gate_keys=self._gate_keys(), now_ms=int(now * 1000)
            )
        except RecordRefused as exc:
            log.warning("peers: record at %d refused (%s): %s", stream_seq, exc.code, exc)
            self.store.refuse_peer_record(stream_seq, exc.code, str(exc), now)
            return
        outcome = self.store.apply_peer_record(record, stream_seq, now)
        if outcome == "conflict":
            log.warning("peers: hold %s passed here and at %s too", record.hold.hex(), record.gate)
        if self.on_applied is not None:
            self.on_applied(record, outcome)

    # -- publishing --------------------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        backoff = RETRY_MIN_S
        while not self._stop.is_set():
            self._wake.wait(BEAT_EVERY_S)
            self._wake.clear()
            self._send_beat()
            self._watch_cut_off()
            try:
                pending = self.store.peer_unpublished(100)
            except GateError:
                log.exception("peers: cannot read the passes to publish")
                continue
            try:
                for own in pending:
                    self._publish(own)
                    if self._stop.is_set():
                        return
                self.publish_error = ""
                backoff = RETRY_MIN_S
            except (TransportError, GateError) as exc:
                self.publish_error = str(exc)
                log.info("peers: publish waits: %s", exc)
                self._wake.wait(backoff)  # a new pass tries again at once
                backoff = min(backoff * 2, RETRY_MAX_S)
                self._wake.set()

    def _publish(self, own: OwnPass) -> None:
        signed = new_record(
            self.key,
            store=self.store_id,
            gate=self.gate_id,
            list_id=own.list_id,
            hold=own.hold,
            shopper=own.shopper,
            shopper_key=own.shopper_key,
            at_ms=int(own.at * 1000),
        )
        seq = self.transport.publish(self.gate_id, signed.doc.msg_id, signed.encode(), self.publish_timeout_s)
        self.store.peer_published(own.list_id, seq, self.clock())

    # -- reachability ------------------------------------------------------------------------------------

    def _watch_cut_off(self) -> None:
        """While the transport is down, the other lanes' passes do not reach this one: after CUT_OFF_AFTER_S
        ask for the payment system's feed every CUT_OFF_SYNC_EVERY_S (on_cut_off), which lists the holds
        their forwarded charges consumed. That bounds what a cut-off lane misses to seconds while the payment
        system is up; while it is down too, the offline budget bounds it."""
        now = time.monotonic()
        if self.transport.status().get("connected"):
            self.cut_off_since = None
            return
        if self.cut_off_since is None:
            self.cut_off_since = now
            return
        due = now - self._last_cut_off_call >= CUT_OFF_SYNC_EVERY_S
        if self.on_cut_off is not None and now - self.cut_off_since >= CUT_OFF_AFTER_S and due:
            self._last_cut_off_call = now
            self.on_cut_off()

    def _send_beat(self) -> None:
        beat = {"gate": self.gate_id, "at": self.clock(), "applied": self._applied_seq}
        with contextlib.suppress(TransportError):
            self.transport.beat(self.gate_id, json.dumps(beat).encode())

    def _beat_received(self, data: bytes) -> None:
        try:
            beat = json.loads(data)
            gate = str(beat["gate"])
        except (ValueError, KeyError, TypeError):
            return
        self._beats[gate] = (time.monotonic(), beat)

    def status(self) -> dict[str, Any]:
        """What the panel and doctor show: the transport, what waits to be published, and per lane its last
        record, how late it was applied here, and whether its heartbeat arrives."""
        now = time.monotonic()
        gates = {g["gate"]: g for g in self.store.peer_gates()}
        for gate in self._beats:
            gates.setdefault(gate, {"gate": gate, "records": 0, "conflicts": 0, "last_record_at": None})
        lanes = []
        for gate, info in sorted(gates.items()):
            seen = self._beats.get(gate)
            age = round(now - seen[0], 1) if seen else None
            lanes.append(
                {
                    **info,
                    "self": gate == self.gate_id,
                    "heartbeat_age_s": age,
                    "reachable": gate == self.gate_id or (age is not None and age <= REACHABLE_FOR_S),
                }
            )
        return {
            "gate": self.gate_id,
            "transport": self.transport.status(),
            "applied_to": self._applied_seq,
            "caught_up": self.caught_up,
            "cut_off_s": round(time.monotonic() - self.cut_off_since, 1) if self.cut_off_since else None,
            "publish_error": self.publish_error,
            **self.store.peer_backlog(),
            "lanes": lanes,
        }
