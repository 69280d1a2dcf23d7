"""The panel's pages, one module each: a Blueprint `bp`, and `NAV` = (menu label, endpoint, role needed).

What every page needs from the app: the running lane (`service()`), the POSTed form checked field by field
(`posted()`), and a lane event saying who changed what (`record()`).
"""

from __future__ import annotations

import time
from typing import Any

from flask import current_app, request

from gate.panel import forms
from gate.panel.auth import who
from gate.service import LaneService


def service() -> LaneService:
    return current_app.extensions["selfcheckout.lane"]


def now() -> float:
    return current_app.extensions["selfcheckout.clock"]()


def posted(*fields: str) -> dict[str, str]:
    """The form's fields, each given once, no others (the CSRF token was checked before the view)."""
    return forms.read_form(request, fields)


def record(detail: str, data: dict[str, Any] | None = None) -> None:
    """A `technician` lane event for a change made from the panel: who did it, from where, and what."""
    person = who()
    service().store.record_event(
        "technician",
        f"{detail} (by {person['by']}, {person['role']})",
        {**(data or {}), **person, "from": request.remote_addr, "at": time.time()},
    )
