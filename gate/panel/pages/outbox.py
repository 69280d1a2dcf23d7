"""The charge outbox: what waits to be sent, what the payment system refused for good, and requeueing
(technicians only) one flagged charge, or every flagged charge at once, once the cause is fixed; replay
incidents (one list charged from another gate's copy) are listed apart, settled, with nothing to requeue.

Requeueing every flagged charge takes those flagged when the request arrives, not those the page showed: the
form posts the count the technician saw, and the flash says how many were really requeued when it differs
(another charge was flagged, or someone requeued them meanwhile). Either way it is safe: a requeued charge
is sent again with the same id, so it can never be charged twice.
"""

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
SHOWN = 100  # rows of each table


@bp.get("/outbox")
@require(TECHNICIAN)
def index() -> Any:
    store = service().store
    return render_template(
        "outbox.html",
        flagged=store.outbox_entries("flagged", SHOWN),
        flagged_count=store.outbox_count("flagged"),
        conflicts=store.outbox_entries("conflict", SHOWN),
        pending=store.outbox_entries("pending", SHOWN),
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


@bp.post("/outbox/requeue-all")
@require(TECHNICIAN)
def requeue_all() -> Any:
    seen = forms.shown_count(posted("shown").get("shown"))
    svc = service()
    count = svc.store.outbox_requeue_flagged(time.time())
    if count == 0:
        flash("no charge was flagged: nothing was requeued", "ok")
        return redirect(url_for("outbox.index"), 303)
    charges = "1 flagged charge" if count == 1 else f"{count} flagged charges"
    record(f"{charges} requeued from the panel", {"count": count, "shown": seen})
    if svc.forwarder is not None:
        svc.forwarder.notify()
    since = "" if count == seen else f" ({seen} when the page was loaded)"
    flash(f"{charges} requeued{since}: the forwarder sends {'it' if count == 1 else 'them'} again", "ok")
    return redirect(url_for("outbox.index"), 303)
