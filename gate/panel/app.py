"""The panel's Flask app: one lane's pages, behind named accounts, hardened for a LAN anyone may reach.

- every page needs a logged-in person (gate.panel.auth), and every change says who made it;
- sessions are held server-side in the accounts file (gate.panel.sessions): logout, an idle timeout or
  removing the person ends them, and the id changes at login;
- state changes are POST forms; Flask-WTF's CSRFProtect checks the session's token on every POST before
  the view runs, each field is checked before anything changes (gate.panel.forms), and a refusal is a
  4xx page naming the field;
- a POST whose Origin is another site is refused, and so is a Host header that is not an IP address or one
  of this machine's names (DNS rebinding);
- Jinja autoescapes every template; no debug mode; CSP `default-src 'self'`, X-Frame-Options DENY,
  `Cache-Control: no-store` on every page.

A page lives in its own module under gate.panel.pages with a Blueprint `bp` and `NAV` entries (label,
endpoint, role): PAGES below lists them, in the menu's order.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Collection
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from gate.panel import auth, forms, live, view
from gate.panel.accounts import Accounts
from gate.panel.forms import FormError, PanelError
from gate.panel.pages import api, attendant, audit, checks, exit, maintenance, outbox, peers, records, status
from gate.panel.sessions import ServerSessionInterface
from gate.service import LaneService

log = logging.getLogger(__name__)

MIN_KEY_BYTES = 16
MAX_BODY_BYTES = 16 * 1024
IDLE_S = 15 * 60.0
CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
PAGES = (status, records, attendant, audit, exit, outbox, peers, maintenance, checks)
_CSRF_MESSAGES = {
    "The CSRF token is missing.": "missing CSRF token: reload the page and submit again",
    "The CSRF session token is missing.": (
        "no panel session (it expired, or you logged out): reload the page and submit again"
    ),
    "The CSRF tokens do not match.": (
        "CSRF token does not match this session: reload the page and submit again"
    ),
    "The CSRF token is invalid.": "CSRF token is not valid here: reload the page and submit again",
}


def create_app(
    service: LaneService,
    *,
    secret_key: bytes,
    accounts: Accounts,
    idle_s: float = IDLE_S,
    hosts: Collection[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """The panel for one running lane. `secret_key` signs the CSRF tokens (no default: see
    gate.panel.secret_key_for); `accounts` holds the people and their sessions; a session unused for
    `idle_s` seconds ends. `hosts` are the names the panel answers to besides IP addresses (default:
    localhost and this machine's host names)."""
    if not isinstance(secret_key, bytes) or len(secret_key) < MIN_KEY_BYTES:
        raise PanelError(f"the panel's secret key must be at least {MIN_KEY_BYTES} random bytes")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        DEBUG=False,
        PROPAGATE_EXCEPTIONS=False,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES,
        MAX_FORM_PARTS=16,
        SESSION_COOKIE_NAME="panel_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as its session, which has the idle timeout
        WTF_CSRF_FIELD_NAME=forms.CSRF_FIELD,
    )
    app.debug = False
    app.jinja_env.autoescape = True  # every template, whatever its file name
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True
    app.json.sort_keys = True  # type: ignore[attr-defined]
    app.session_interface = ServerSessionInterface(accounts, idle_s)
    app.extensions["selfcheckout.lane"] = service
    app.extensions["selfcheckout.clock"] = clock
    app.extensions["selfcheckout.watch"] = live.LaneWatch(service)
    allowed_hosts = frozenset(h.lower() for h in (hosts if hosts is not None else _own_names()))

    @app.before_request
    def check_request() -> None:
        forms.check_host(request.host, allowed_hosts)
        if request.method == "POST":
            forms.check_origin(request.headers.get("Origin"), request.host_url)
        # What the lane looked like as this page's data is read: its stream starts from here, so a change
        # between the render and the stream's start is still sent.
        g.live_version = app.extensions["selfcheckout.watch"].version

    auth.init_app(app, accounts)  # the login guard runs after the host and origin checks
    CSRFProtect(app)

    def refuse(status_code: int, message: str) -> Any:
        if request.path.startswith("/api/"):
            return jsonify(error=status_code, message=message), status_code
        return render_template("error.html", status=status_code, message=message), status_code

    @app.errorhandler(FormError)
    def form_error(exc: FormError) -> Any:
        log.info("panel refused %s %s from %s: %s", request.method, request.path, request.remote_addr, exc)
        return refuse(exc.status, str(exc))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        return refuse(400, _CSRF_MESSAGES.get(exc.description or "", str(exc.description)))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status_code = exc.code or 500
        messages = {
            404: "no such page",
            405: f"{request.method} is not allowed here",
            413: f"request too large (at most {MAX_BODY_BYTES} bytes)",
            429: "too many failed logins: wait a while, then try again (the pause grows with each failure)",
        }
        return refuse(status_code, messages.get(status_code, exc.description or exc.name))

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Any:
        log.exception("panel: %s %s failed", request.method, request.path)
        return refuse(500, f"internal error ({type(exc).__name__}); see the lane's log")

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" would make Origin "null"
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    nav = [entry for page in PAGES for entry in page.NAV]

    @app.context_processor
    def common() -> dict[str, Any]:
        account = auth.current_account()
        return {
            "gate_id": service.config.lane.gate_id,
            "store_id": service.config.lane.store_id,
            "csrf_field": forms.CSRF_FIELD,
            "account": account,
            "live_since": g.get("live_version", 0),
            "nav": [(label, endpoint) for label, endpoint, role in nav if account and account.may(role)],
        }

    view.add_filters(app)
    for page in (*PAGES, api, live):
        app.register_blueprint(page.bp)

    @app.get("/favicon.ico")
    def favicon() -> Any:
        return "", 204  # browsers ask for one; a 404 would be an error in their console

    return app


def _own_names() -> frozenset[str]:
    names = {"localhost"}
    for name in (socket.gethostname(), socket.getfqdn()):
        if name:
            names |= {name, f"{name.split('.')[0]}.local", name.split(".")[0]}
    return frozenset(n.lower() for n in names)
