"""A lane assembled from its config: store, keys, reader, gate I/O, forwarder, the link to the other lanes
of the store, the scanner for attendants' audits (when the config has a [scanner] section), and the lane
itself.

The hardware is injected (a reader, a pin factory) so that tests, the demo and the bench build the very
same lane as `selfcheckout gate run` on a Pi, with stand-ins where the hardware would be.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drivers.gate_io import GateIO
from drivers.scanner import BarcodeScanner
from gate.clock import LaneClock
from gate.config import LaneConfig
from gate.errors import SetupError
from gate.lane import Lane, LaneTimings, ReaderLike
from gate.lane.storage import StorageWatch
from gate.legality import GateIdentity, Policy
from gate.notify import Notifier
from gate.peers.link import PeerLink
from gate.peers.transport import NatsTransport, Transport
from gate.protocol.keys import SigningKey, TrustedKeys, read_secret_key
from gate.pruner import Pruner
from gate.store import GateStore
from gate.store.files import lane_lock

if TYPE_CHECKING:  # imported where a lane forwards: a lane whose charges another process forwards
    # (--no-forward) never loads it, nor the HTTP client under it (some 4 MB resident, a tenth of a second)
    from gate.forwarder import Forwarder

log = logging.getLogger(__name__)

# How long a tap may wait for another writer (the forwarder) before it fails and the shopper taps again.
LANE_BUSY_TIMEOUT_S = 1.0


@dataclass
class LaneService:
    """Everything one running lane holds open; closed in reverse order by open_lane."""

    config: LaneConfig
    store: GateStore
    io: GateIO
    reader: ReaderLike
    lane: Lane
    forwarder: Forwarder | None
    peers: PeerLink | None = None
    scanner: BarcodeScanner | None = None  # for attendants' audits, when the config has [scanner]

    def health(self) -> dict[str, Any]:
        reader_health = getattr(self.reader, "health", None)
        return {
            "lane": self.lane.health(),
            "gate_io": self.io.health(),
            "reader": reader_health() if reader_health else None,
            "scanner": self.scanner.health() if self.scanner else None,
            "forwarder": self.forwarder.status() if self.forwarder else None,
            "backlog": dataclasses.asdict(self.store.outbox_backlog()),
            "peers": self.peers.status() if self.peers else None,
        }


def pcsc_reader(config: LaneConfig) -> Any:
    """The real reader; pyscard is imported only here, so a machine without it can run the demo."""
    try:
        from drivers.nfc_pcsc import PhoneReader
    except ModuleNotFoundError as exc:
        if exc.name != "smartcard":
            raise
        raise SetupError(
            "pyscard is not installed, so the lane cannot talk to the NFC reader: install the nfc extra "
            "(pip install '.[nfc]' in the checkout, or `make test` once, which builds it)"
        ) from exc

    return PhoneReader(config.reader.name_pattern, exchange_timeout_ms=config.reader.exchange_timeout_ms)


@contextlib.contextmanager
def open_lane(
    config: LaneConfig,
    *,
    reader: ReaderLike | None = None,
    pin_factory: Any = None,
    notifier: Notifier | None = None,
    forward: bool = True,
    peers_transport: Transport | None = None,
    **lane_overrides: Any,
) -> Iterator[LaneService]:
    """Open every part of a lane; the gate I/O starts locked, and is left to its wiring on the way out.

    With a [peers] section (or an injected `peers_transport`: the demo's in-process one) the lane first
    catches up on what the other lanes of the store passed, before it decides anything.
    """
    gate_key = read_secret_key(config.lane.gate_key_file)
    trusted = TrustedKeys.from_files(config.payments.public_key_files)
    t = config.timings
    with contextlib.ExitStack() as stack:
        # One lane per database; a missing or empty one is refused (gate init makes it), a damaged one too.
        stack.enter_context(lane_lock(config.lane.database))
        store = stack.enter_context(
            GateStore(config.lane.database, create=False, busy_timeout_s=LANE_BUSY_TIMEOUT_S)
        )
        store.integrity_check()
        io = stack.enter_context(
            GateIO(
                **dataclasses.asdict(config.gpio),
                door_fault_ms=t.door_fault_ms,
                beam_blocked_fault_s=t.beam_blocked_fault_s,
                pin_factory=pin_factory,
            )
        )
        if reader is None:
            reader = stack.enter_context(pcsc_reader(config))
        forwarder = None
        if forward:
            from gate.forwarder import Forwarder

            forwarder = stack.enter_context(Forwarder.from_config(config, store))
        if store.needs_recovery():  # a database made anew: take back what this gate reported, first
            _recover(config, store, gate_key)
        stack.enter_context(Pruner(store, config)).start()
        if forwarder is not None:
            forwarder.start()
        peers = _peer_link(
            config, store, gate_key, peers_transport, on_cut_off=forwarder.sync_soon if forwarder else None
        )
        if peers is not None:
            stack.enter_context(peers)
            timeout_s = config.peers.catch_up_timeout_s if config.peers else 5.0
            if not peers.catch_up(timeout_s):
                store.record_event(
                    "peers",
                    f"not caught up with the other lanes within {timeout_s} s: deciding on what this lane"
                    " knows (within its offline budget); catching up in the background",
                    {"applied_to": store.peer_cursor()},
                )
        notify = [n.notify for n in (forwarder, peers) if n is not None]
        lane_overrides.setdefault("storage", StorageWatch(config.lane.database))
        if config.policy.require_synced_clock:
            clock = LaneClock(config.lane.database.with_name(config.lane.database.name + ".clock"))
            lane_overrides.setdefault("clock", clock.now)
            lane_overrides.setdefault("clock_trusted", clock.trusted)
        lane = Lane(
            gate=GateIdentity.from_config(config),
            policy=Policy.from_config(config),
            trusted=trusted,
            gate_key=gate_key,
            store=store,
            reader=reader,
            gate_io=io,
            timings=LaneTimings(
                t.open_timeout_s,
                t.close_after_passage_ms / 1000,
                t.denied_display_ms / 1000,
                t.repeat_window_s,
            ),
            notifier=notifier,
            on_commit=_each(notify) if notify else None,
            **lane_overrides,
        )
        stack.callback(lane.close)
        scanner = None
        if config.scanner is not None:  # closed before the lane: no scan arrives at a closed lane
            scanner = stack.enter_context(
                BarcodeScanner(
                    **dataclasses.asdict(config.scanner),
                    on_scan=lane.on_scan,
                    on_notice=lane.on_scanner_notice,
                )
            )
        yield LaneService(config, store, io, reader, lane, forwarder, peers, scanner)


def _each(calls: list[Callable[[], None]]) -> Callable[[], None]:
    def run() -> None:
        for call in calls:
            call()

    return run


def _peer_link(
    config: LaneConfig,
    store: GateStore,
    gate_key: SigningKey,
    transport: Transport | None,
    *,
    on_cut_off: Callable[[], None] | None,
) -> PeerLink | None:
    """The lane's link to the other lanes: over NATS per [peers], or over an injected transport."""
    if transport is None:
        if config.peers is None:
            return None
        transport = NatsTransport(
            config.peers.servers,
            store_id=config.lane.store_id,
            replicas=config.peers.replicas,
            name=f"selfcheckout-{config.lane.gate_id}",
        )
    return PeerLink(
        store,
        transport,
        key=gate_key,
        store_id=config.lane.store_id,
        gate_id=config.lane.gate_id,
        publish_timeout_s=config.peers.publish_timeout_s if config.peers else 2.0,
        on_cut_off=on_cut_off,
    )


def _recover(config: LaneConfig, store: GateStore, gate_key: SigningKey) -> None:
    from gate.http import environment_session
    from gate.recovery import RecoveryError, recover

    url = config.payments.url
    try:
        with environment_session(url) as session:
            restored = recover(
                store,
                url=url,
                store_id=config.lane.store_id,
                gate_id=config.lane.gate_id,
                gate_key=gate_key,
                session=session,
                timeout_s=config.payments.timeout_s,
            )
    except RecoveryError as exc:
        raise RecoveryError(
            f"{config.lane.database} is a new database: the lane decides nothing before it took back the "
            f"passes this gate reported to the payment system, and it could not: {exc} (it tries again at "
            "the next start)"
        ) from exc
    log.warning("took back %d pass(es) this gate had reported to the payment system", restored)
