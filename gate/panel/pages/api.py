"""For machines. `/api/health` answers without a login, so it says only how the lane is (state, problems,
counts): no shopper, list, basket or money of anyone. `/api/status` and `/api/events`, behind a login,
carry the last tap and the decisions. The devices' readings (reader, scanner, gate I/O) are in both."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from gate.legality.reasons import text_of
from gate.panel import forms, view
from gate.panel.accounts import ATTENDANT
from gate.panel.auth import require
from gate.panel.pages import service
from gate.store import Event, LaneEvent

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/health")
def health() -> Any:
    h = service().health()
    fw = h["forwarder"]
    return jsonify(
        state=view.shown_state(h),
        lane_state=h["lane"]["state"],
        problems=view.problems(h),
        fire_alarm=h["lane"]["fire_alarm"],
        maintenance=h["lane"]["maintenance"],
        gate_locked=h["gate_io"]["locked"],
        reader_connected=(h["reader"] or {}).get("connected"),
        phone_present=(h["reader"] or {}).get("phone_present"),
        scanner_connected=(h["scanner"] or {}).get("connected"),
        scanner_scans=(h["scanner"] or {}).get("scans"),
        scanner_reconnects=(h["scanner"] or {}).get("reconnects"),
        audit_in_progress=h["lane"].get("audit") is not None,
        backlog_count=h["backlog"]["count"],
        forwarder_running=fw["running"] if fw else None,
        payment_system_unreachable=bool(fw and fw["unreachable_streak"]),
        peers=_peers(h["peers"]),
        # the devices' own readings: ports, counters, errors; nothing about anyone's shopping
        reader=h["reader"],
        scanner=h["scanner"],
        gate_io=h["gate_io"],
    )


def _peers(status: dict[str, Any] | None) -> dict[str, Any] | None:
    """The link to the other lanes in counts: connected, caught up, passes not yet told, refusals, and
    which lanes' heartbeats arrive (gate ids only)."""
    if status is None:
        return None
    return {
        "connected": status["transport"]["connected"],
        "caught_up": status["caught_up"],
        "unpublished": status["unpublished"],
        "refused": status["refused"],
        "reachable": {lane["gate"]: lane["reachable"] for lane in status["lanes"]},
    }


@bp.get("/status")
@require(ATTENDANT)
def status() -> Any:
    svc = service()
    return jsonify({**svc.health(), "last_tap": view.last_tap(svc)})


@bp.get("/events")
@require(ATTENDANT)
def events() -> Any:
    n = forms.limit(request.args, 50)
    store = service().store
    return jsonify(
        decisions=[_event_json(e) for e in store.recent_events(n)],
        lane_events=[_lane_event_json(e) for e in store.recent_lane_events(n)],
    )


def _event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at,
        "verdict": e.verdict,
        "reasons": [{"code": c, "text": text_of(c), "message": m} for c, m in e.reasons],
        "timings_ms": {k: round(v * 1000, 3) for k, v in e.timings.items()},
        "list": e.list_id.hex() if e.list_id else None,
        "hold": e.hold.hex() if e.hold else None,
        "shopper": e.shopper,
        "total": e.total,
        "currency": e.currency,
        "attendant": e.attendant,
    }


def _lane_event_json(e: LaneEvent) -> dict[str, Any]:
    return {"id": e.id, "at": e.at, "kind": e.kind, "detail": e.detail, "data": e.data}
