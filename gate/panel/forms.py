"""What the panel accepts from a browser, and the one-line 400 it answers to anything else.

Every state-changing request is a form POST carrying the session's CSRF token (checked by Flask-WTF's
CSRFProtect before the view runs, gate.panel.app). Each field is read once,
from a fixed set of names, and checked before anything is changed: a request with one bad field changes
nothing. Messages name the field and say what was expected, so a technician (or a test) reads exactly why.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from flask import Request
from werkzeug.datastructures import MultiDict

from gate.errors import GateError
from gate.panel.accounts import SECRET_MAX

MODES: Mapping[str, str] = {"open": "hold open", "locked": "keep locked", "service": "back in service"}
REASON_MAX = 200
EXIT_REASONS: Mapping[str, str] = {
    "no_list": "a shopper leaving without a list (bought nothing)",
    "phone_dead": "a shopper whose phone died",
    "staff": "staff",
    "other": "another reason (see the note)",
}
LIMIT_MAX = 500
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_DIGITS = re.compile(r"[0-9]{1,4}")
_COUNT = re.compile(r"[0-9]{1,6}")
_HEX_PREFIX = re.compile(r"[0-9a-f]{1,32}")
_KIND = re.compile(r"[a-z_]{1,40}")
_PATH = re.compile(r"/[A-Za-z0-9/_.-]{0,80}")
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


def shown_count(value: str | None) -> int:
    """How many flagged charges the outbox page showed: a whole number (what is requeued is what is flagged
    when the request arrives)."""
    if value is None:
        raise FormError("shown: missing; expected the number of flagged charges the page showed")
    if not _COUNT.fullmatch(value):
        raise FormError(f"shown: {shown(value)} is not a whole number")
    return int(value)


def account_name(value: str | None) -> str:
    if value is None or not value.strip():
        raise FormError("name: missing; enter your account name")
    if len(value) > 40:
        raise FormError(f"name: {len(value)} characters; at most 32")
    return value.strip().lower()


def secret(value: str | None) -> str:
    if value is None or value == "":
        raise FormError("secret: missing; enter your password or PIN")
    if len(value) > SECRET_MAX:
        raise FormError(f"secret: {len(value)} characters; at most {SECRET_MAX}")
    return value


def next_page(value: str | None) -> str:
    """Where to go after logging in: a path on this panel only, never another site."""
    if value and value.startswith("/") and not value.startswith("//") and _PATH.fullmatch(value):
        return value
    return "/"


# -- filters of the listings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """What a listing is narrowed to; each empty field matches everything."""

    verdict: str = ""
    reason: str = ""
    list_prefix: str = ""
    kind: str = ""
    since: str = ""
    until: str = ""
    since_at: float | None = None
    until_at: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.verdict or self.reason or self.list_prefix or self.kind or self.since or self.until)


def decision_filter(args: MultiDict[str, str], verdicts: Collection[str], codes: Collection[str]) -> Filter:
    """?verdict=&reason=&list=&since=&until= of the decisions page, each checked."""
    verdict = _one(args, "verdict")
    if verdict and verdict not in verdicts:
        raise FormError(f"verdict: {shown(verdict)} is not one of {', '.join(verdicts)}")
    reason = _one(args, "reason")
    if reason and reason not in codes:
        raise FormError(f"reason: {shown(reason)} is not a reason code")
    prefix = _one(args, "list").lower()
    if prefix and not _HEX_PREFIX.fullmatch(prefix):
        raise FormError(f"list: {shown(prefix)} is not 1-32 hexadecimal digits")
    return Filter(verdict=verdict, reason=reason, list_prefix=prefix, **_time_range(args))


def event_filter(args: MultiDict[str, str]) -> Filter:
    """?kind=&since=&until= of the lane events page, each checked."""
    kind = _one(args, "kind")
    if kind and not _KIND.fullmatch(kind):
        raise FormError(f"kind: {shown(kind)} is not an event kind (letters and '_')")
    return Filter(kind=kind, **_time_range(args))


def _one(args: MultiDict[str, str], name: str) -> str:
    values = args.getlist(name)
    if len(values) > 1:
        raise FormError(f"{name}: given {len(values)} times, expected once")
    return values[0].strip() if values else ""


def _time_range(args: MultiDict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("since", "until"):
        text = _one(args, name)
        out[name] = text
        out[f"{name}_at"] = None
        if text:
            try:
                out[f"{name}_at"] = time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M"))
            except ValueError:
                raise FormError(f"{name}: {shown(text)} is not a date and time (YYYY-MM-DDTHH:MM)") from None
    return out


def refuse(status: int, message: str) -> NoReturn:
    """Answer this request with `status` and one line (a 409 when the lane cannot do it now)."""
    error = FormError(message)
    error.status = status
    raise error


def exit_why(value: str | None) -> str:
    """Why one person is let out: one of EXIT_REASONS."""
    expected = ", ".join(EXIT_REASONS)
    if value is None or value not in EXIT_REASONS:
        raise FormError(f"why: {shown(value or '')} is not one of {expected}")
    return value


def note(value: str | None) -> str:
    """An optional note (0-200 printable characters, no markup)."""
    if value is None or not value.strip():
        return ""
    return _text("note", value, REASON_MAX, "say why")
