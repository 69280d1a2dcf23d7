"""The audit page: the basket re-scanned at the lane's scanner against the signed list, and its end.

While an audit runs the page shows, line by line, what was listed and what was scanned, the difference in
money, and the scanner's health (an unplugged scanner is said, and the scans so far are kept). The attendant
lets the shopper out or calls a manager; both are recorded with the scanned list (gate.lane.auditing). With
no audit running, the attendant may ask for the next shopper to be audited, or audit a list that waits for
an attendant, and read the audits recorded lately.

The part of the page that changes with each scan is marked `data-live`, so an open page follows the scans.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for

from gate.errors import LaneError
from gate.panel import forms
from gate.panel.forms import FormError
from gate.service import LaneService
from gate.store import StoreError

bp = Blueprint("audit", __name__)

_CODE = re.compile(r"[0-9]{8,14}")


def _service() -> LaneService:
    return current_app.extensions["selfcheckout.lane"]


def _posted(*fields: str) -> dict[str, str]:
    form = forms.read_form(request, (*fields,))
    forms.check_csrf(session.get("csrf"), form)
    return form


def _done(message: str) -> Any:
    flash(message, "ok")
    return redirect(url_for("audit.index"), 303)


class AuditConflict(FormError):
    """The lane refused the step (no audit running, another one running, the lane out of service): 409."""

    status = 409


def _refuse(exc: Exception) -> Any:
    raise AuditConflict(str(exc)) from exc


@bp.get("/audit")
def index() -> Any:
    service = _service()
    lane = service.lane
    audit = lane.audit
    return render_template(
        "audit.html",
        audit=audit,
        comparison=lane.audit_comparison() if audit is not None else None,
        scanner=service.scanner.health() if service.scanner is not None else None,
        requested_by=lane.audit_requested_by,
        waiting=[d for d in lane.awaiting_attendant() if audit is None or d.list_id != audit.list_id],
        recent=service.store.recent_audits(10),
        currency=service.config.lane.currency,
    )


@bp.post("/audit/next")
def ask_next() -> Any:
    name = forms.attendant(_posted("attendant").get("attendant"))
    _service().lane.request_audit(name)
    return _done(f"the next shopper's list will be audited (asked by {name})")


@bp.post("/audit/next/withdraw")
def withdraw_next() -> Any:
    _posted()
    _service().lane.request_audit(None)
    return _done("no audit of the next shopper")


@bp.post("/audit/start")
def start() -> Any:
    form = _posted("list_id", "attendant")
    list_id = forms.list_id(form.get("list_id"))
    name = forms.attendant(form.get("attendant"))
    try:
        _service().lane.start_audit(list_id, name)
    except LaneError as exc:
        return _refuse(exc)
    return _done(f"audit of list {list_id.hex()} started: scan every item of the basket")


@bp.post("/audit/undo")
def undo() -> Any:
    code = _posted("code").get("code") or ""
    if not _CODE.fullmatch(code):
        raise FormError(f"code: {forms.shown(code)} is not a barcode of 8-14 digits")
    try:
        _service().lane.undo_scan(code)
    except LaneError as exc:
        return _refuse(exc)
    return _done(f"one scan of {code} taken back")


@bp.post("/audit/let-out")
def let_out() -> Any:
    name = forms.attendant(_posted("attendant").get("attendant"))
    try:
        _service().lane.audit_let_out(name)
    except (LaneError, StoreError) as exc:
        return _refuse(exc)
    return _done(
        f"{name} let the shopper out: the gate is open, the scanned list recorded beside the signed one"
    )


@bp.post("/audit/manager")
def manager() -> Any:
    name = forms.attendant(_posted("attendant").get("attendant"))
    try:
        _service().lane.audit_call_manager(name)
    except (LaneError, StoreError) as exc:
        return _refuse(exc)
    return _done(f"{name} called a manager: the gate stays shut; the audit is recorded")
