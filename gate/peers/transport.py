"""The engines that carry pass records between the lanes of one store.

`NatsTransport` is the production one: NATS JetStream, one nats-server per lane clustered over the store's
network, one replicated stream of pass records per store (docs/operations.md, "Lanes of one store", says
why this engine and what happens when a lane or its server fails). A record is published with its
(gate, seq) as the JetStream message id, so the same record published again after a crash mid-publish is
stored once. Each lane reads the stream with an ordered consumer from the stream sequence after the last
one its store applied, so a lane that was cut off, stopped or killed reads exactly what it missed.

`LocalBus` + `LocalTransport` carry the same records inside one process: the demo on a machine without
nats-server, with the same stream semantics (sequence numbers, de-duplication by message id).

Both are used from plain threads: every NATS call runs on the transport's own asyncio loop thread, and
`publish` blocks its caller (the link's publisher thread, never the lane loop) until the stream acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from gate.errors import GateError

log = logging.getLogger(__name__)

OnRecord = Callable[[int, bytes], None]  # (stream sequence, record bytes), in stream order
OnBeat = Callable[[bytes], None]

RETENTION_S = 7 * 86_400  # a hold lives for hours; a week of records lets any lane rebuild its state
DUPLICATE_WINDOW_S = 600.0  # the same message id published again within this is stored once
WATCH_EVERY_S = 1.0  # how often a lane compares what it read with the stream's last sequence


class TransportError(GateError, ConnectionError):
    """The peers' transport cannot take or give records now (no server reachable, no stream quorum)."""


class Transport(Protocol):
    """What a lane's peer link needs from an engine."""

    def start(self, *, from_seq: int, on_record: OnRecord, on_beat: OnBeat) -> None: ...
    def publish(self, subject_gate: str, msg_id: str, data: bytes, timeout_s: float) -> int: ...
    def beat(self, subject_gate: str, data: bytes) -> None: ...
    def last_seq(self, timeout_s: float) -> int: ...
    def status(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


def stream_name(store_id: str) -> str:
    """A JetStream stream name for the store (no '.', '*', '>' or spaces allowed there)."""
    return "PASSES_" + re.sub(r"[^A-Za-z0-9_-]", "_", store_id)


# -- in one process -----------------------------------------------------------------------------------------


class LocalBus:
    """An in-process stream: records in order, numbered from 1, de-duplicated by message id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[bytes] = []
        self._ids: set[str] = set()
        self._readers: list[tuple[OnRecord, OnBeat]] = []

    def append(self, msg_id: str, data: bytes) -> int:
        with self._lock:
            if msg_id in self._ids:
                return self._records.index(data) + 1 if data in self._records else len(self._records)
            self._ids.add(msg_id)
            self._records.append(data)
            seq = len(self._records)
            readers = list(self._readers)
        for on_record, _ in readers:
            on_record(seq, data)
        return seq

    def join(self, from_seq: int, on_record: OnRecord, on_beat: OnBeat) -> None:
        with self._lock:
            backlog = list(enumerate(self._records, start=1))[max(from_seq, 1) - 1 :]
            self._readers.append((on_record, on_beat))
        for seq, data in backlog:
            on_record(seq, data)

    def leave(self, on_record: OnRecord) -> None:
        with self._lock:
            self._readers = [r for r in self._readers if r[0] is not on_record]

    def beat(self, data: bytes) -> None:
        with self._lock:
            readers = list(self._readers)
        for _, on_beat in readers:
            on_beat(data)

    @property
    def last_seq(self) -> int:
        with self._lock:
            return len(self._records)


class LocalTransport:
    """One lane's end of a LocalBus."""

    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus
        self._on_record: OnRecord | None = None

    def start(self, *, from_seq: int, on_record: OnRecord, on_beat: OnBeat) -> None:
        self._on_record = on_record
        self.bus.join(from_seq, on_record, on_beat)

    def publish(self, subject_gate: str, msg_id: str, data: bytes, timeout_s: float) -> int:
        return self.bus.append(msg_id, data)

    def beat(self, subject_gate: str, data: bytes) -> None:
        self.bus.beat(data)

    def last_seq(self, timeout_s: float) -> int:
        return self.bus.last_seq

    def status(self) -> dict[str, Any]:
        return {"engine": "in-process", "connected": True, "reading": True, "server": None, "error": ""}

    def close(self) -> None:
        if self._on_record is not None:
            self.bus.leave(self._on_record)
            self._on_record = None


# -- NATS JetStream -----------------------------------------------------------------------------------------


class NatsTransport:
    """NATS JetStream through nats-py, on an asyncio loop of its own (see the module docstring).

    `servers` lists this lane's own nats-server first, then the other lanes' (the client moves to another
    when its own is gone). `replicas` is the stream's replication: 3 for three lanes or more, so one
    machine lost leaves a quorum.
    """

    def __init__(
        self,
        servers: list[str],
        *,
        store_id: str,
        replicas: int = 3,
        connect_timeout_s: float = 1.0,
        name: str = "selfcheckout-lane",
    ) -> None:
        if not servers:
            raise TransportError("no NATS server to connect to ([peers] servers is empty)")
        self.servers = list(servers)
        self.store_id = store_id
        self.replicas = replicas
        self.connect_timeout_s = connect_timeout_s
        self.name = name
        self.stream = stream_name(store_id)
        self.prefix = f"selfcheckout.{re.sub(r'[^A-Za-z0-9_-]', '_', store_id)}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="peers-nats", daemon=True)
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._stream_ready = False
        self._delivered = 0
        self._last_delivery = 0.0
        self._on_record: OnRecord | None = None
        self._on_beat: OnBeat | None = None
        self._error = ""
        self._task: Future[None] | None = None
        self._closed = False

    # -- the loop thread ------------------------------------------------------------------------------

    def start(self, *, from_seq: int, on_record: OnRecord, on_beat: OnBeat) -> None:
        """Connect in the background (retrying for ever) and deliver records from `from_seq` on."""
        self._delivered = max(from_seq, 1) - 1
        self._on_record = on_record
        self._on_beat = on_beat
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    async def _run(self) -> None:
        import nats

        while not self._closed:
            try:
                self._nc = await nats.connect(
                    self.servers,
                    name=self.name,
                    connect_timeout=self.connect_timeout_s,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.2,
                    ping_interval=1,
                    max_outstanding_pings=2,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
                break
            except Exception as exc:  # nats raises several unrelated types for "no server"
                self._error = f"no NATS server reachable ({type(exc).__name__}: {exc})"
                await asyncio.sleep(0.5)
        if self._closed:
            return
        self._js = self._nc.jetstream(timeout=2.0)
        await self._nc.subscribe(f"{self.prefix}.beat.*", cb=self._beat_received)
        while not self._closed:
            try:
                await self._watch()
            except Exception as exc:
                self._error = f"{type(exc).__name__}: {exc}"
                log.debug("peers: %s", self._error)
            await asyncio.sleep(WATCH_EVERY_S)

    async def _ensure_stream(self) -> None:
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        if self._stream_ready:
            return
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.prefix}.pass.*"],
                    storage=StorageType.FILE,
                    num_replicas=self.replicas,
                    max_age=RETENTION_S,
                    duplicate_window=DUPLICATE_WINDOW_S,
                )
            )
        self._stream_ready = True

    async def _watch(self) -> None:
        """Make sure the stream exists and our consumer reads it; start it again from what we have if it fell
        behind the stream without delivering (a server restarted, a partition healed)."""
        await self._ensure_stream()
        info = await self._js.stream_info(self.stream)
        last = info.state.last_seq
        stalled = last > self._delivered and time.monotonic() - self._last_delivery > WATCH_EVERY_S
        if self._sub is None or stalled:
            await self._subscribe()
        self._error = ""

    async def _subscribe(self) -> None:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        self._last_delivery = time.monotonic()
        self._sub = await self._js.subscribe(
            f"{self.prefix}.pass.*",
            stream=self.stream,
            cb=self._record_received,
            ordered_consumer=True,
            idle_heartbeat=1.0,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._delivered + 1
            ),
        )

    async def _record_received(self, msg: Any) -> None:
        seq = msg.metadata.sequence.stream
        self._last_delivery = time.monotonic()
        if seq <= self._delivered:
            return  # delivered again after a consumer restart
        self._delivered = seq
        assert self._on_record is not None
        self._on_record(seq, msg.data)

    async def _beat_received(self, msg: Any) -> None:
        if self._on_beat is not None:
            self._on_beat(msg.data)

    async def _on_error(self, exc: Exception) -> None:
        self._error = f"{type(exc).__name__}: {exc}"

    async def _on_disconnected(self) -> None:
        self._error = "disconnected from NATS; reconnecting"

    async def _on_reconnected(self) -> None:
        self._error = ""
        self._last_delivery = 0.0  # let the watch compare with the stream at once

    # -- called from other threads ------------------------------------------------------------------------

    def _call(self, coro: Any, timeout_s: float) -> Any:
        if self._js is None or self._nc is None or not self._nc.is_connected:
            coro.close()
            raise TransportError(self._error or "not connected to NATS yet")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except TimeoutError as exc:
            future.cancel()
            raise TransportError(f"NATS did not answer within {timeout_s} s") from exc
        except Exception as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    def publish(self, subject_gate: str, msg_id: str, data: bytes, timeout_s: float) -> int:
        """Store one record in the stream; its stream sequence once acked (TransportError if not)."""

        async def send() -> int:
            await self._ensure_stream()
            ack = await self._js.publish(
                f"{self.prefix}.pass.{subject_gate}",
                data,
                timeout=timeout_s,
                stream=self.stream,
                headers={"Nats-Msg-Id": msg_id},
            )
            return int(ack.seq)

        return int(self._call(send(), timeout_s + 0.5))

    def beat(self, subject_gate: str, data: bytes) -> None:
        """Best effort: a lane's heartbeat for the others' reachability view."""
        nc = self._nc
        if nc is None or not nc.is_connected:
            return
        self._loop.call_soon_threadsafe(
            lambda: asyncio.ensure_future(nc.publish(f"{self.prefix}.beat.{subject_gate}", data))
        )

    def last_seq(self, timeout_s: float) -> int:
        async def ask() -> int:
            await self._ensure_stream()
            info = await self._js.stream_info(self.stream)
            return int(info.state.last_seq)

        return int(self._call(ask(), timeout_s))

    def status(self) -> dict[str, Any]:
        nc = self._nc
        connected = bool(nc is not None and nc.is_connected)
        server = None
        if connected and nc.connected_url is not None:
            server = f"{nc.connected_url.hostname}:{nc.connected_url.port}"
        return {
            "engine": "nats",
            "connected": connected,
            "reading": connected and self._sub is not None,  # our consumer of the stream exists
            "server": server,
            "stream": self.stream,
            "read_to": self._delivered,
            "error": self._error,
        }

    def close(self) -> None:
        """Stop reading and disconnect; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():

            async def shut() -> None:
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in others:
                    task.cancel()
                await asyncio.gather(*others, return_exceptions=True)

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shut(), self._loop).result(3)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(3)
        with contextlib.suppress(RuntimeError):
            self._loop.close()
