"""The lane's retention, applied by a thread of its own: once at start, then every [retention] prune_every_s.

Off the lane's path: a prune is one write transaction, which a tap waits for at most the busy timeout; a
failed prune (the disk, a busy database) is logged and tried again next time, never a reason to stop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gate.config import LaneConfig
from gate.errors import GateError
from gate.store import GateStore, Pruned

log = logging.getLogger(__name__)
DAY_S = 86_400


def prune_now(store: GateStore, config: LaneConfig, now: float) -> Pruned:
    """One prune by the config's retention and the policy's list validity."""
    r, p = config.retention, config.policy
    return store.prune(
        now=now,
        keep_events_s=r.events_days * DAY_S,
        keep_settled_s=r.settled_charges_days * DAY_S,
        list_valid_s=p.max_list_age_s + p.clock_skew_s,
    )


class Pruner:
    """Prunes `store` now and every prune_every_s until close(); a context manager."""

    def __init__(
        self, store: GateStore, config: LaneConfig, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pruner", daemon=True)

    def start(self) -> Pruner:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pruned = prune_now(self._store, self._config, self._clock())
                if pruned.total:
                    log.info("pruned %s", pruned)
            except GateError as exc:
                log.warning(
                    "pruning failed, next try in %.0f s: %s", self._config.retention.prune_every_s, exc
                )
            self._stop.wait(self._config.retention.prune_every_s)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def __enter__(self) -> Pruner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
