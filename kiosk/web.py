"""The kiosk screen: one Flask page, updated by server-sent events, never reloaded.

Chromium shows `/` full screen. The page opens `/events`; every change of the session (a scan, a tap, a
touch, a timer) re-renders the screen fragment in the kiosk's current language and pushes it as one event,
which the page puts in place. Touches go back as small JSON posts to `/action`; the answer to each comes
through the event stream like every other change, so the screen has one source of truth.

The server listens on loopback only (the kiosk's own browser is its only client), so it takes no login.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import (
    Flask,
    Response,
    get_template_attribute,
    jsonify,
    render_template,
    request,
    stream_with_context,
)
from flask_babel import Babel, force_locale, format_currency, gettext

from gate.money import exponent
from kiosk.session import Kiosk
from kiosk.texts import MONEY_PARAMS, NOTICES

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}
HEARTBEAT_S = 15.0


def compile_translations(target: Path) -> Path:
    """The .po catalogs in kiosk/translations compiled to .mo files under target (gettext reads .mo)."""
    for po_path in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        language = po_path.parent.parent.name
        out = target / language / "LC_MESSAGES" / "messages.mo"
        out.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as po, out.open("wb") as mo:
            write_mo(mo, read_po(po, locale=language))
    return target


def create_app(kiosk: Kiosk) -> Flask:
    app = Flask(__name__)
    compiled = Path(tempfile.mkdtemp(prefix="kiosk-i18n-"))
    compile_translations(compiled)
    app.config.update(BABEL_TRANSLATION_DIRECTORIES=str(compiled), BABEL_DEFAULT_LOCALE=kiosk.languages[0])
    app.extensions["kiosk_i18n_dir"] = compiled
    Babel(app, locale_selector=lambda: kiosk.language)
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True

    @functools.lru_cache(maxsize=4096)
    def money_in(minor: int, language: str) -> str:
        with force_locale(language):
            return format_currency(Decimal(minor).scaleb(-exponent(kiosk.currency)), kiosk.currency)

    def money(minor: int) -> str:
        """Minor units in the shopper's language; cached, since a screen repeats its prices on every scan."""
        return money_in(minor, kiosk.language)

    def notice_text() -> str:
        notice = kiosk.notice
        if notice is None:
            return ""
        params = {k: money(v) if k in MONEY_PARAMS else v for k, v in notice.params.items()}
        text = NOTICES.get(notice.code)
        return (
            str(text) % params
            if text is not None
            else gettext("Please ask staff (%(code)s).", code=notice.code)
        )

    def row_texts() -> dict[str, str]:
        return {
            "one_less": gettext("One less"),
            "one_more": gettext("One more"),
            "remove": gettext("Remove"),
            "staff_check": gettext("Staff check at the exit"),
        }

    def screen() -> str:
        with force_locale(kiosk.language):
            return render_template(
                "screen.html",
                k=kiosk,
                money=money,
                notice=notice_text(),
                names=LANGUAGE_NAMES,
                texts=row_texts(),
            )

    def line_update(line_id: int) -> str | None:
        """The changed line, the totals and the notice as one JSON event; None if the screen must be whole
        (a first line, a line gone, another state)."""
        line = next((x for x in kiosk.lines if x.id == line_id), None)
        if line is None or kiosk.state != "shopping" or len(kiosk.lines) < 2:
            return None
        with force_locale(kiosk.language):
            total = kiosk.total
            part = functools.partial(get_template_attribute, "_parts.html")
            return json.dumps(
                {
                    "line": line_id,
                    "row": str(part("row")(kiosk, line, total, money, row_texts())).strip(),
                    "hold": str(part("hold")(kiosk, total, money)).strip(),
                    "notice": str(part("notice")(kiosk, notice_text())).strip(),
                }
            )

    @app.get("/")
    def page() -> str:
        with force_locale(kiosk.language):
            return render_template("kiosk.html", screen=screen(), language=kiosk.language)

    @app.get("/events")
    def events() -> Response:
        def stream() -> Iterator[str]:
            seen = -1
            while not kiosk.closed:
                version = kiosk.wait_change(seen, HEARTBEAT_S)
                if version == seen:
                    yield ": still here\n\n"
                    continue
                change = kiosk.line_change
                update = None
                if change is not None and change[0] == version and seen == version - 1:
                    update = line_update(change[1])
                seen = version
                if update is not None:
                    yield f"event: line\nid: {version}\ndata: {update}\n\n"
                    continue
                html = screen()
                data = "".join(f"data: {line}\n" for line in html.splitlines())
                yield f"event: screen\nid: {version}\n{data}\n"

        return Response(
            stream_with_context(stream()),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.post("/action")
    def action() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return jsonify(error="expected a JSON object with an 'action'"), 400
        name = body["action"]
        try:
            if name == "qty":
                kiosk.set_qty(_int(body, "line"), _int(body, "qty"))
            elif name == "remove":
                kiosk.remove(_int(body, "line"))
            elif name == "cancel":
                kiosk.cancel()
            elif name == "still_here":
                kiosk.still_here()
            elif name == "lang":
                kiosk.set_language(str(body.get("lang")))
            else:
                return jsonify(error=f"no such action: {name[:40]}"), 400
        except ValueError as exc:
            return jsonify(error=str(exc)), 400
        return "", 204

    @app.errorhandler(404)
    def not_found(_: Exception) -> Any:
        return jsonify(error="no such page"), 404

    return app


def close_app(app: Flask) -> None:
    """Remove the compiled translations the app was made with."""
    shutil.rmtree(app.extensions.get("kiosk_i18n_dir", ""), ignore_errors=True)


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"'{key}' must be an integer")
    return value
