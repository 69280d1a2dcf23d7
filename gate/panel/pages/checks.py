"""The doctor's checks (gate.doctor), run from the panel on the lane as it runs: keys, reader, scanner,
GPIO, database, disk, clock, the payment system and the feed, each one plain sentence (technicians only).

The hardware is asked as the lane holds it: the GPIO check gets the lane's own pin factory, so no second
backend is loaded on pins in use. The checks ask the payment system over the network, so they run when a
technician opens the page, never on a timer.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, render_template

from gate.doctor import Probes, run_checks
from gate.panel.accounts import TECHNICIAN
from gate.panel.auth import require
from gate.panel.pages import service

bp = Blueprint("checks", __name__)
NAV = [("Checks", "checks.index", TECHNICIAN)]


@bp.get("/checks")
@require(TECHNICIAN)
def index() -> Any:
    svc = service()
    t0 = time.perf_counter()
    checks = run_checks(svc.config, Probes(pin_factory=svc.io.pin_factory))
    return render_template("checks.html", checks=checks, took_s=time.perf_counter() - t0, at=time.time())
