"""The status page: whatever keeps the lane from serving comes first, in plain sentences; then the lane,
the gate, the reader, the charges to forward and the last tap."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, render_template

from gate.panel import charts, view
from gate.panel.accounts import ATTENDANT
from gate.panel.live import watch
from gate.panel.pages import service

bp = Blueprint("status", __name__)
NAV = [("Status", "status.index", ATTENDANT)]


def status_context() -> dict[str, Any]:
    svc = service()
    health = svc.health()
    fw = health["forwarder"]
    live = watch()
    live.look()  # the outage's start, as of now, even on a page opened before the watch first looked
    trouble = view.payment_trouble(svc, fw)
    return {
        "health": health,
        "problems": view.problems(health),
        "state": view.shown_state(health),
        "trouble": trouble,
        "forwarder": view.forwarder_line(fw, trouble, live.unreachable_since),
        "last": view.last_tap(svc),
        "backlog": health["backlog"],
        "flagged": len(svc.store.outbox_entries("flagged", 1000)),
        "catalog": svc.store.catalog_counts(),
        "currency": svc.config.lane.currency,
        "charts": charts.last_hour(svc.store, time.time()),
        "now": time.time(),
    }


@bp.get("/")
def index() -> Any:
    return render_template("status.html", **status_context())
