"""Logging in and out, and who may do what.

Every page but the login page, the stylesheet and `/api/health` needs a logged-in person; pages that
change the lane need the role they name (`require`). The person is looked up again on every request, so
removing an account or changing its role takes effect at the next click, not at the next login.

Failed logins are paced by Flask-Limiter, twice: per client address and per account name, each in steps
that grow (a few a minute, then fewer an hour, then a day's cap), and only failures count. A client is
held back long before an account is, so one attacker's guesses pause that attacker, not the staff; a
4-digit guess space would take months at the per-client daily cap, and the secrets are longer than that.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from gate.panel import forms
from gate.panel.accounts import Account, Accounts
from gate.panel.sessions import ACCOUNT_KEY, ServerSession

log = logging.getLogger(__name__)

PER_CLIENT = "5/minute;20/hour;100/day"
PER_ACCOUNT = "10/minute;40/hour;200/day"
OPEN_ENDPOINTS = frozenset({"auth.login", "static", "favicon", "api.health"})

bp = Blueprint("auth", __name__)


def accounts() -> Accounts:
    return current_app.extensions["selfcheckout.accounts"]


def current_account() -> Account | None:
    """The logged-in person of this request (looked up once per request), or None."""
    if "account" not in g:
        name = session.get(ACCOUNT_KEY)
        g.account = accounts().get(name) if isinstance(name, str) else None
    return g.account


def who() -> dict[str, str]:
    """For the record of an action: the person's name and role."""
    account = current_account()
    assert account is not None, "an action was taken without a login"
    return {"by": account.name, "role": account.role}


def require(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view only a person with `role` (or a higher one) may use; others get a 403 naming the role."""

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            account = current_account()
            if account is None or not account.may(role):
                abort(403, f"only a {role} may do this")
            return view(*args, **kwargs)

        return guarded

    return wrap


def guard_login() -> Response | None:
    """before_request: send a person who is not logged in to the login page (machines get a 401)."""
    if request.endpoint in OPEN_ENDPOINTS or current_account() is not None:
        return None
    if request.method == "GET" and not request.path.startswith("/api/"):
        return redirect(url_for("auth.login", next=request.path), 303)
    abort(401, "log in first")


def _failed(response: Response) -> bool:
    return response.status_code == 403


def _account_key() -> str:
    return "account:" + request.form.get("name", "")[:40].lower()


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = forms.next_page(request.args.get("next"))
    if request.method == "GET":
        if current_account() is not None:
            return redirect(target, 303)
        return render_template("login.html", next=target)
    form = forms.read_form(request, ("name", "secret"))
    name = forms.account_name(form.get("name"))
    secret = forms.secret(form.get("secret"))
    account = accounts().verify(name, secret)
    if account is None:
        log.warning("panel: failed login for %r from %s", name, request.remote_addr)
        return render_template("login.html", next=target, failed=True, name=name), 403
    assert isinstance(session, ServerSession)
    session.clear()
    session.rotate()  # a new id at login: an id planted before it is worth nothing
    session[ACCOUNT_KEY] = account.name
    g.pop("account", None)
    _record("logged in", account)
    return redirect(target, 303)


@bp.post("/logout")
def logout() -> Any:
    forms.read_form(request, ())
    assert isinstance(session, ServerSession)
    account = current_account()
    if account is not None:
        _record("logged out", account)
    session.end()
    return redirect(url_for("auth.login"), 303)


def _record(what: str, account: Account) -> None:
    """A `panel` lane event: who came or went, with which role, from where."""
    detail = f"{account.name} ({account.role}) {what} from {request.remote_addr}"
    log.info("panel: %s", detail)
    current_app.extensions["selfcheckout.lane"].store.record_event(
        "panel", detail, {"by": account.name, "role": account.role, "from": request.remote_addr}
    )


def init_app(app: Flask, store: Accounts) -> None:
    """Accounts, the login guard and the login pages for one app; each app paces its own logins."""
    app.extensions["selfcheckout.accounts"] = store
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", headers_enabled=False)
    for limits, key in ((PER_CLIENT, get_remote_address), (PER_ACCOUNT, _account_key)):
        limiter.limit(limits, key_func=key, methods=["POST"], deduct_when=_failed)(bp)
    app.before_request(guard_login)
    app.register_blueprint(bp)
