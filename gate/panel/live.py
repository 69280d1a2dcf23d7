"""Pushing changes to open pages (server-sent events) instead of reloading them.

One `LaneWatch` thread per panel looks at the lane every POLL_S seconds while a page listens (every
IDLE_POLL_S otherwise): its state, its problems, the backlog, the newest decision and lane event. When any
of these changes it wakes the open streams; each sends one `change` event, and the page's script fetches
the parts of the page marked `data-live` again (gate/panel/static/panel.js). A page is never reloaded, so a
folded section a technician opened stays open.

Each open stream holds one of waitress's worker threads, so at most MAX_STREAMS pages listen at once; a
page beyond that gets 204, which EventSource takes as "do not reconnect", and the script falls back to
fetching every FALLBACK_S seconds.

The watch also remembers since when the forwarder has found the payment system unreachable, which the
forwarder itself does not keep: the status page says "unreachable since 10:42".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

from flask import Blueprint, Response, current_app, request, stream_with_context

from gate.panel import view
from gate.panel.accounts import ATTENDANT
from gate.panel.auth import require
from gate.service import LaneService

log = logging.getLogger(__name__)

POLL_S = 0.05
IDLE_POLL_S = 1.0
KEEPALIVE_S = 5.0  # also how soon a stream whose page has gone frees its thread
MAX_STREAMS = 8
FALLBACK_S = 5

bp = Blueprint("live", __name__)


class LaneWatch:
    """Looks at the lane and tells the open streams when anything they show has changed."""

    def __init__(self, service: LaneService) -> None:
        self.service = service
        self.version = 0
        self.unreachable_since: float | None = None
        self._digest: Any = None
        self._cond = threading.Condition()
        self._streams = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="panel-watch", daemon=True)

    def start(self) -> None:
        """Start looking (once; later calls do nothing)."""
        with self._cond:
            if not self._thread.is_alive() and not self._stop.is_set():
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def look(self) -> None:
        """One look at the lane; wakes the streams when what they show has changed."""
        svc = self.service
        health = svc.health()
        fw = health["forwarder"]
        if view.payment_trouble(svc, fw):
            if self.unreachable_since is None:
                self.unreachable_since = time.time()
        else:
            self.unreachable_since = None
        decisions = svc.store.recent_events(1)
        events = svc.store.recent_lane_events(1)
        lane = dict(health["lane"])
        lane.pop("last_turn_age_s", None)
        digest = (
            json.dumps(lane, sort_keys=True, default=str),
            tuple(view.problems(health)),
            json.dumps(health["backlog"], sort_keys=True),
            json.dumps(fw, sort_keys=True, default=str) if fw else None,
            json.dumps(health["gate_io"], sort_keys=True, default=str),
            decisions[0].id if decisions else 0,
            events[0].id if events else 0,
            len(svc.lane.awaiting_attendant()),
        )
        if digest != self._digest:
            with self._cond:
                self._digest = digest
                self.version += 1
                self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.look()
            except Exception:
                log.exception("panel: looking at the lane failed")
            self._stop.wait(POLL_S if self._streams else IDLE_POLL_S)

    def _moved(self, seen: int) -> bool:
        return self.version != seen or self._stop.is_set()

    def stream(self, since: int | None = None) -> Iterator[str] | None:
        """The events of one page rendered at version `since` (a change after it is sent at once), or None
        when MAX_STREAMS pages listen already."""
        with self._cond:
            if self._streams >= MAX_STREAMS:
                return None
            self._streams += 1
        return self._events(since)

    def _events(self, since: int | None) -> Iterator[str]:
        try:
            yield "retry: 1000\n: open\n\n"
            seen = self.version if since is None else since
            while not self._stop.is_set():
                with self._cond:
                    self._cond.wait_for(partial(self._moved, seen), KEEPALIVE_S)
                    version = self.version
                if version == seen:
                    yield ": keep-alive\n\n"
                    continue
                seen = version
                yield f"event: change\ndata: {version}\n\n"
        finally:
            with self._cond:
                self._streams -= 1


def watch() -> LaneWatch:
    """The app's watch, started by the first page that needs it."""
    found: LaneWatch = current_app.extensions["selfcheckout.watch"]
    found.start()
    return found


@bp.get("/live")
@require(ATTENDANT)
def live() -> Any:
    events = watch().stream(request.args.get("since", type=int))
    if events is None:
        return Response(status=204)
    return Response(
        stream_with_context(events),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
