"""Maintenance holds (technicians only): hold the gate open, keep it locked, or put the lane back in
service, each with a reason, recorded with who chose it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for

from gate.panel import forms
from gate.panel.accounts import TECHNICIAN
from gate.panel.auth import require
from gate.panel.forms import MODES
from gate.panel.pages import posted, record, service

bp = Blueprint("maintenance", __name__)
NAV = [("Maintenance", "maintenance.index", TECHNICIAN)]


@bp.get("/maintenance")
@require(TECHNICIAN)
def index() -> Any:
    return render_template("maintenance.html", lane=service().lane.health(), modes=MODES)


@bp.post("/maintenance")
@require(TECHNICIAN)
def change() -> Any:
    form = posted("mode", "reason")
    mode = forms.mode(form.get("mode"))
    reason = forms.reason(form.get("reason"))
    service().lane.maintenance(None if mode == "service" else mode, reason)
    record(f"{MODES[mode]} from the panel: {reason}", {"mode": mode, "reason": reason})
    flash(f"{MODES[mode]}: {reason}", "ok")
    return redirect(url_for("maintenance.index"), 303)
