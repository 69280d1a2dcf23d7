"""The charge outbox: what waits to be sent, what the payment system refused for good, and requeueing one
once its cause is fixed (technicians only); replay incidents (one list charged from another gate's copy)
are listed apart, settled, with nothing to requeue."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for

from gate.panel import forms
from gate.panel.accounts import TECHNICIAN
from gate.panel.auth import require
from gate.panel.pages import posted, record, service
from gate.store import StoreError

bp = Blueprint("outbox", __name__)
NAV = [("Outbox", "outbox.index", TECHNICIAN)]


@bp.get("/outbox")
@require(TECHNICIAN)
def index() -> Any:
    store = service().store
    return render_template(
        "outbox.html",
        flagged=store.outbox_entries("flagged", 100),
        conflicts=store.outbox_entries("conflict", 100),
        pending=store.outbox_entries("pending", 100),
        backlog=store.outbox_backlog(),
        currency=service().config.lane.currency,
        now=time.time(),
    )


@bp.post("/outbox/requeue")
@require(TECHNICIAN)
def requeue() -> Any:
    charge = forms.charge_id(posted("charge_id").get("charge_id"))
    svc = service()
    try:
        svc.store.outbox_requeue(charge, time.time())
    except StoreError as exc:
        forms.refuse(409, str(exc))
    record(f"charge {charge.hex()} requeued from the panel", {"charge": charge.hex()})
    if svc.forwarder is not None:
        svc.forwarder.notify()
    flash(f"charge {charge.hex()} requeued: the forwarder sends it again", "ok")
    return redirect(url_for("outbox.index"), 303)
