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

from flask import Blueprint, flash, redirect, render_template, url_for

from gate.errors import LaneError
from gate.panel import forms
from gate.panel.accounts import ATTENDANT
from gate.panel.auth import require, who
from gate.panel.forms import FormError
from gate.panel.pages import posted, service
from gate.store import StoreError

bp = Blueprint("audit", __name__)
NAV = [("Audit", "audit.index", ATTENDANT)]

_CODE = re.compile(r"[0-9]{8,14}")


def _name() -> str:
    """The logged-in person, as the audit records them."""
    return who()["by"]


def _done(message: str) -> Any:
    flash(message, "ok")
    return redirect(url_for("audit.index"), 303)


class AuditConflict(FormError):
    """The lane refused the step (no audit running, another one running, the lane out of service): 409."""

    status = 409


def _refuse(exc: Exception) -> Any:
    raise AuditConflict(str(exc)) from exc


@bp.get("/audit")
@require(ATTENDANT)
def index() -> Any:
    svc = service()
    lane = svc.lane
    audit = lane.audit
    return render_template(
        "audit.html",
        audit=audit,
        comparison=lane.audit_comparison() if audit is not None else None,
        scanner=svc.scanner.health() if svc.scanner is not None else None,
        requested_by=lane.audit_requested_by,
        waiting=[d for d in lane.awaiting_attendant() if audit is None or d.list_id != audit.list_id],
        recent=svc.store.recent_audits(10),
        currency=svc.config.lane.currency,
    )


@bp.post("/audit/next")
@require(ATTENDANT)
def ask_next() -> Any:
    posted()
    name = _name()
    service().lane.request_audit(name)
    return _done(f"the next shopper's list will be audited (asked by {name})")


@bp.post("/audit/next/withdraw")
@require(ATTENDANT)
def withdraw_next() -> Any:
    posted()
    service().lane.request_audit(None)
    return _done("no audit of the next shopper")


@bp.post("/audit/start")
@require(ATTENDANT)
def start() -> Any:
    list_id = forms.list_id(posted("list_id").get("list_id"))
    name = _name()
    try:
        service().lane.start_audit(list_id, name)
    except LaneError as exc:
        return _refuse(exc)
    return _done(f"audit of list {list_id.hex()} started: scan every item of the basket")


@bp.post("/audit/undo")
@require(ATTENDANT)
def undo() -> Any:
    code = posted("code").get("code") or ""
    if not _CODE.fullmatch(code):
        raise FormError(f"code: {forms.shown(code)} is not a barcode of 8-14 digits")
    try:
        service().lane.undo_scan(code)
    except LaneError as exc:
        return _refuse(exc)
    return _done(f"one scan of {code} taken back")


@bp.post("/audit/let-out")
@require(ATTENDANT)
def let_out() -> Any:
    posted()
    name = _name()
    try:
        service().lane.audit_let_out(name)
    except (LaneError, StoreError) as exc:
        return _refuse(exc)
    return _done(
        f"{name} let the shopper out: the gate is open, the scanned list recorded beside the signed one"
    )


@bp.post("/audit/manager")
@require(ATTENDANT)
def manager() -> Any:
    posted()
    name = _name()
    try:
        service().lane.audit_call_manager(name)
    except (LaneError, StoreError) as exc:
        return _refuse(exc)
    return _done(f"{name} called a manager: the gate stays shut; the audit is recorded")
