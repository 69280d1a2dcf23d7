"""Flask sessions held in the accounts file, not in the cookie: the cookie carries only a random id.

Why our own SessionInterface rather than Flask-Session: the sessions must be found by the person they
belong to (removing an account or resetting a secret ends them all), and they belong in the same file as
the accounts, so one copy of that file is the whole of the panel's state. Flask-Session's stores key
sessions only by id. The interface is Flask's own extension point and holds no logic beyond the table.

A session is written only once it holds something (a CSRF token, a flash, a login), so machines reading
`/api/*` leave no rows. `rotate()` gives a session a new id at login, so an id planted before the login
(session fixation) is worth nothing after it.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from gate.panel.accounts import Accounts

ACCOUNT_KEY = "_account"  # the logged-in person's name, kept in the session's data like any key


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """A session's data; `sid` is the cookie's random id (None until the session is first saved)."""

    def __init__(self, data: dict[str, Any] | None = None, sid: str | None = None) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.sid = sid
        self.modified = False
        self.ended: str | None = None  # an id to delete at save: logout, or the id before a rotation

    def rotate(self) -> None:
        """A new id for this session from now on; the old one is deleted when the answer is saved."""
        if self.sid is not None and self.ended is None:
            self.ended = self.sid
        self.sid = None
        self.modified = True

    def end(self) -> None:
        """Log out: the data goes, and the row behind the cookie is deleted."""
        self.rotate()
        self.clear()


class ServerSessionInterface(SessionInterface):
    def __init__(self, accounts: Accounts, idle_s: float) -> None:
        self.accounts = accounts
        self.idle_s = idle_s

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if sid:
            found = self.accounts.load_session(sid, self.idle_s)
            if found is not None:
                return ServerSession(found[1], sid)
        return ServerSession()

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        name = self.get_cookie_name(app)
        if session.ended is not None:
            self.accounts.end_session(session.ended)
            session.ended = None
        if not session:
            if session.modified or session.sid is not None:
                response.delete_cookie(name, path=self.get_cookie_path(app))
            return
        if session.sid is None:
            session.sid = secrets.token_urlsafe(32)
        # Saved on every answer, so seen_at follows the person's last request (the idle timeout).
        self.accounts.save_session(session.sid, session.get(ACCOUNT_KEY), dict(session))
        response.vary.add("Cookie")
        response.set_cookie(
            name,
            session.sid,
            httponly=True,
            samesite=self.get_cookie_samesite(app),
            secure=self.get_cookie_secure(app),
            path=self.get_cookie_path(app),
        )
