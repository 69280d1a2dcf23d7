"""The other lanes of the store: whether each one's heartbeat arrives, its last pass record here and how
late it was applied; this lane's link (transport, passes not yet told, records refused and why)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, render_template

from gate.panel.accounts import ATTENDANT
from gate.panel.pages import service

bp = Blueprint("peers", __name__)
NAV = [("Peers", "peers.index", ATTENDANT)]


@bp.get("/peers")
def index() -> Any:
    link = service().peers
    return render_template("peers.html", peers=link.status() if link else None, now=time.time())
