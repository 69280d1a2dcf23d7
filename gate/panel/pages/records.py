"""Decisions and lane events, newest first, filtered by what a technician looks for: verdict, reason,
list id, time range (decisions), kind and time range (lane events)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from gate.legality.reasons import RULES
from gate.panel import forms
from gate.panel.accounts import ATTENDANT
from gate.panel.pages import service

bp = Blueprint("records", __name__)
NAV = [("Decisions", "records.decisions", ATTENDANT), ("Lane events", "records.lane_events", ATTENDANT)]
VERDICTS = ("pass", "deny", "attendant")


@bp.get("/decisions")
def decisions() -> Any:
    f = forms.decision_filter(request.args, VERDICTS, {r.code for r in RULES})
    limit = forms.limit(request.args, 50)
    events = service().store.find_events(
        verdict=f.verdict or None,
        reason=f.reason or None,
        list_prefix=f.list_prefix or None,
        since=f.since_at,
        until=f.until_at,
        limit=limit,
    )
    return render_template("decisions.html", events=events, f=f, verdicts=VERDICTS, rules=RULES)


@bp.get("/events")
def lane_events() -> Any:
    f = forms.event_filter(request.args)
    limit = forms.limit(request.args, 100)
    events = service().store.find_lane_events(
        kind=f.kind or None, since=f.since_at, until=f.until_at, limit=limit
    )
    return render_template("events.html", events=events, f=f)
