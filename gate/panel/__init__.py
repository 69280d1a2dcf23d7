"""The technician panel: a small Flask app over a running lane, served by `selfcheckout gate run`.

Modules, each named for what it holds:
- `app`: create_app, the security headers and refusals, the list of pages;
- `accounts`: people (technician, attendant), argon2 hashes, and the server-side sessions;
- `sessions`: the Flask session interface over the accounts file; `auth`: login, logout, roles, pacing;
- `pages/*`: one module per page (status, decisions and events, attendant, let one out, outbox,
  maintenance, and the JSON API);
- `live`: changes pushed to open pages (server-sent events); `view`: what the pages say;
- `forms`: every field a browser may send, checked; `serving`: waitress on a thread; `cli`: accounts.
"""

from __future__ import annotations

import os
from pathlib import Path

from gate.config import LaneConfig, PanelSection
from gate.config_files import read_panel_secret
from gate.errors import KeyFileError
from gate.panel.accounts import AccountError, Accounts
from gate.panel.app import CSP, create_app
from gate.panel.forms import FormError, PanelError
from gate.panel.serving import PanelServer
from gate.service import LaneService

__all__ = [
    "CSP",
    "AccountError",
    "Accounts",
    "FormError",
    "PanelError",
    "PanelServer",
    "accounts_path",
    "create_app",
    "secret_key_for",
    "serve",
]


def secret_key_for(panel: PanelSection) -> bytes:
    """The key signing CSRF tokens: the bytes of panel.secret_key_file, or a random key for this process."""
    if panel.secret_key_file is None:
        return os.urandom(32)
    try:
        return read_panel_secret(Path(panel.secret_key_file))
    except KeyFileError as exc:
        raise PanelError(str(exc)) from exc


def accounts_path(config: LaneConfig) -> Path:
    """panel.accounts_file, or `panel.db` beside the lane's database when the config names none."""
    return config.panel.accounts_file or Path(config.lane.database).with_name("panel.db")


def serve(
    service: LaneService, accounts: Accounts, *, host: str | None = None, port: int | None = None
) -> PanelServer:
    """The panel served at panel.host:panel.port on a thread (a context manager; close() stops it)."""
    panel = service.config.panel
    app = create_app(
        service, secret_key=secret_key_for(panel), accounts=accounts, idle_s=panel.session_idle_s
    )
    watch = app.extensions["selfcheckout.watch"]
    watch.start()  # from the start, so an outage's beginning is known
    try:
        return PanelServer(app, panel.host if host is None else host, panel.port if port is None else port)
    except PanelError:
        watch.close()  # no panel: nothing is to go on looking at the lane
        raise
