"""Lists the lane sent to staff (age-restricted goods, a random audit), and approving one: the charge is
committed under the approving person's account name, then the gate opens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for

from gate.errors import LaneError
from gate.panel import forms
from gate.panel.accounts import ATTENDANT
from gate.panel.auth import require, who
from gate.panel.pages import posted, service
from gate.store import StoreError

bp = Blueprint("attendant", __name__)
NAV = [("Attendant", "attendant.index", ATTENDANT)]


@bp.get("/attendant")
@require(ATTENDANT)
def index() -> Any:
    lane = service().lane
    waiting = lane.awaiting_attendant()
    # A list the check sent to an audit is let out from the audit page, after its basket is re-scanned.
    audited = {d.list_id for d in waiting if d.list_id is not None and lane.audit_required(d.list_id, d)}
    return render_template("attendant.html", waiting=waiting, audited=audited)


@bp.post("/attendant/approve")
@require(ATTENDANT)
def approve() -> Any:
    list_id = forms.list_id(posted("list_id").get("list_id"))
    name = who()["by"]
    try:
        service().lane.approve(list_id, name)
    except (LaneError, StoreError) as exc:
        forms.refuse(409, str(exc))
    flash(f"list {list_id.hex()} approved by {name}: the gate is open", "ok")
    return redirect(url_for("attendant.index"), 303)
