"""What the panel accepts from a browser, and the one-line 400 it answers to anything else.

Every state-changing request is a form POST carrying the session's CSRF token. Each field is read once,
from a fixed set of names, and checked before anything is changed: a request with one bad field changes
nothing. Messages name the field and say what was expected, so a technician (or a test) reads exactly why.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from collections.abc import Collection, Mapping

from flask import Request
from werkzeug.datastructures import MultiDict

from gate.errors import GateError

MODES: Mapping[str, str] = {"open": "hold open", "locked": "keep locked", "service": "back in service"}
REASON_MAX = 200
ATTENDANT_MAX = 60
LIMIT_MAX = 500
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_DIGITS = re.compile(r"[0-9]{1,4}")
_SHOWN = 40  # characters of a refused value repeated in a message


class PanelError(GateError):
    """The technician panel cannot start or serve (its key file, its port)."""


class FormError(PanelError, ValueError):
    """A request the panel refuses; the message names the field and what was expected (HTTP 400)."""

    status = 400


def shown(value: str) -> str:
    """A refused value as a message repeats it: quoted, control characters escaped, cut at 40 characters."""
    cut = value[:_SHOWN]
    return repr(cut) + ("..." if len(value) > _SHOWN else "")


# -- the request as a whole ----------------------------------------------------------------------------------


def check_host(host: str, allowed: Collection[str]) -> None:
    """Refuse a Host header that is neither an IP address nor one of this machine's names.

    A page served under another name is what a DNS-rebinding site would get: it could read a CSRF token
    from its own session and post it back. Browsing the panel by IP address or hostname keeps working.
    """
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    try:
        ipaddress.ip_address(name)
        return
    except ValueError:
        pass
    if name not in allowed:
        raise FormError(f"Host {shown(host)} is not an address of this panel: use its IP address or hostname")


def check_origin(origin: str | None, host_url: str) -> None:
    """A browser's POST says where its form came from; a form from another site is refused."""
    if origin is None:
        return  # not a browser (curl, a script holding the session cookie): the CSRF token still applies
    if origin.rstrip("/") != host_url.rstrip("/"):
        raise FormError(f"cross-site request refused: Origin {shown(origin)} is not this panel")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def check_csrf(expected: str | None, form: Mapping[str, str]) -> None:
    given = form.get(CSRF_FIELD)
    if given is None or given == "":
        raise FormError("missing CSRF token: reload the page and submit again")
    if expected is None:
        raise FormError(
            "no panel session (it expired, or the lane restarted): reload the page and submit again"
        )
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        raise FormError("CSRF token does not match this session: reload the page and submit again")


def read_form(request: Request, fields: Collection[str]) -> dict[str, str]:
    """The POSTed form as one string per name; refuses other bodies, files, repeated and unknown fields."""
    if request.mimetype not in FORM_TYPES:
        got = request.mimetype or "no content type"
        raise FormError(f"expected a form (application/x-www-form-urlencoded), got {shown(got)}")
    if request.files:
        name = next(iter(request.files))
        raise FormError(f"{shown(name)}: expected text, got a file upload")
    allowed = {CSRF_FIELD, *fields}
    out: dict[str, str] = {}
    for name in request.form:
        if name not in allowed:
            raise FormError(f"unexpected field {shown(name)}")
        values = request.form.getlist(name)
        if len(values) != 1:
            raise FormError(f"{name}: given {len(values)} times, expected once")
        out[name] = values[0]
    return out


# -- fields --------------------------------------------------------------------------------------------------


def mode(value: str | None) -> str:
    """One of MODES: "open" (hold open), "locked" (keep locked), "service" (back in service)."""
    expected = ", ".join(MODES)
    if value is None:
        raise FormError(f"mode: missing; expected one of {expected}")
    if value not in MODES:
        raise FormError(f"mode: {shown(value)} is not one of {expected}")
    return value


def reason(value: str | None) -> str:
    """Why a technician changed the lane: 1-200 printable characters, no markup."""
    return _text("reason", value, REASON_MAX, "say why")


def _text(field: str, value: str | None, maximum: int, ask: str) -> str:
    if value is None:
        raise FormError(f"{field}: missing; {ask} in 1-{maximum} characters")
    text = value.strip()
    if not text:
        raise FormError(f"{field}: empty; {ask} in 1-{maximum} characters")
    if len(text) > maximum:
        raise FormError(f"{field}: {len(text)} characters; at most {maximum}")
    bad = next((c for c in text if not c.isprintable()), None)
    if bad is not None:
        raise FormError(f"{field}: control character U+{ord(bad):04X} is not allowed")
    if "<" in text or ">" in text:
        raise FormError(f"{field}: '<' and '>' are not allowed")
    return text


def charge_id(value: str | None) -> bytes:
    """An outbox charge id: the list id, 32 hexadecimal digits."""
    return _id32("charge_id", value)


def list_id(value: str | None) -> bytes:
    """A shopping list's id, 32 hexadecimal digits."""
    return _id32("list_id", value)


def _id32(field: str, value: str | None) -> bytes:
    if value is None:
        raise FormError(f"{field}: missing; expected 32 hexadecimal digits")
    if not _HEX32.fullmatch(value):
        raise FormError(f"{field}: {shown(value)} is not 32 hexadecimal digits")
    return bytes.fromhex(value)


def attendant(value: str | None) -> str:
    """Who approved a list at the attendant check: 1-60 printable characters, no markup."""
    return _text("attendant", value, ATTENDANT_MAX, "say who checked the goods")


def limit(args: MultiDict[str, str], default: int) -> int:
    """The ?limit= of a listing: a whole number 1-500."""
    values = args.getlist("limit")
    if not values:
        return default
    if len(values) != 1:
        raise FormError(f"limit: given {len(values)} times, expected once")
    text = values[0]
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= LIMIT_MAX:
        raise FormError(f"limit: {shown(text)} is not a whole number 1-{LIMIT_MAX}")
    return int(text)


def pin(value: str | None) -> str:
    if value is None or value == "":
        raise FormError("pin: missing; enter the technician PIN")
    if len(value) > 32:
        raise FormError(f"pin: {len(value)} characters; at most 32")
    return value
