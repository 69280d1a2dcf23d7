"""Let one person out: the gate opens for one passage, with no list and no charge, recorded with who let
them out, why and when. The passage beam closes it after one person, as after a pass; a second person
through is a tailgating alarm as always. The wired request-to-exit button does the same (gate.lane)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for

from gate.errors import LaneError
from gate.panel import forms
from gate.panel.accounts import ATTENDANT
from gate.panel.auth import require, who
from gate.panel.forms import EXIT_REASONS
from gate.panel.pages import posted, service

bp = Blueprint("exit", __name__)
NAV = [("Let one out", "exit.index", ATTENDANT)]


@bp.get("/let-out")
@require(ATTENDANT)
def index() -> Any:
    return render_template("exit.html", reasons=EXIT_REASONS, lane=service().lane.health())


@bp.post("/let-out")
@require(ATTENDANT)
def let_out() -> Any:
    form = posted("why", "note")
    why = forms.exit_why(form.get("why"))
    note = forms.note(form.get("note"))
    person = who()
    try:
        service().lane.let_one_out(f"{person['by']} ({person['role']})", why, note)
    except LaneError as exc:
        forms.refuse(409, str(exc))
    flash(f"the gate is open for one person ({EXIT_REASONS[why]})", "ok")
    return redirect(url_for("exit.index"), 303)
