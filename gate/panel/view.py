"""What the pages say, worked out once: the lane's problems as plain sentences, the forwarder in one line,
the last tap as it ended, and the filters the templates format with.

The status page must never look healthy while something is wrong, so `problems` turns every cause the
lane and its devices report into one sentence a technician can act on; the page shows them at the top, in
red, and the lane's state as FAULT while there is any. The raw readings stay available below, folded.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Flask

from gate.legality.reasons import text_of
from gate.money import format_amount
from gate.service import LaneService


def problems(health: dict[str, Any]) -> list[str]:
    """Each thing that keeps the lane from serving shoppers, as one sentence; empty when all is well."""
    found = []
    lane = health["lane"]
    if lane.get("fault"):
        found.append(_sentence(f"Lane fault: {lane['fault']}"))
    if lane.get("clock_trusted") is False:
        found.append(
            "The clock has not been synchronised since the lane started: every tap is denied until it is "
            "(check the network and the time service)."
        )
    reader = health.get("reader")
    if reader is not None and not reader.get("connected", True):
        why = reader.get("last_error")
        found.append(
            "No NFC reader is connected, so no phone can be read" + (f" ({_cut(why, 160)})." if why else ".")
        )
    io = health["gate_io"]
    if not io.get("connected", True):
        found.append("The gate's inputs and outputs are closed: the lane cannot open or lock the gate.")
    for fault in io.get("faults") or ():
        found.append(_sentence(f"Gate I/O fault: {str(fault).replace('_', ' ')}"))
    scanner = health.get("scanner")
    if scanner is not None and not scanner.get("connected", True):
        found.append("The barcode scanner is not connected: an attendant's audit cannot count scans.")
    mismatch = (health.get("forwarder") or {}).get("gs1_mismatch")
    if mismatch:
        found.append(_sentence(f"Barcode layouts: {mismatch}"))
    if lane.get("last_turn_age_s", 0) > 5:
        found.append(f"The lane loop last turned {lane['last_turn_age_s']:.0f} s ago: it is not taking taps.")
    return found


def shown_state(health: dict[str, Any]) -> str:
    """The state the page shows: "fault" whenever there is a problem, even while the lane itself idles."""
    state = str(health["lane"]["state"])
    if state in ("emergency", "maintenance"):
        return state
    return "fault" if problems(health) else state


def payment_trouble(service: LaneService, fw: dict[str, Any] | None) -> str | None:
    """The last error of charges that wait because the payment system did not take them, or None.

    A charge waits for a reason only while one that was tried must be tried again (or the forwarder's
    last round failed): once the payment system takes them, or nothing waits, there is no trouble, and the
    error the forwarder last saw is history, not news."""
    if fw is None or not fw["backlog_count"]:
        return None
    for entry in service.store.outbox_entries("pending", 50):  # newest first
        if entry.attempts and entry.last_error:
            return entry.last_error
    if fw["unreachable_streak"] and fw["last_error"]:
        return str(fw["last_error"])
    return None


def forwarder_line(fw: dict[str, Any] | None, trouble: str | None, since: float | None) -> tuple[str, str]:
    """(css class, sentence) for the forwarder: reachable or not, since when, how many charges wait."""
    if fw is None:
        return "muted", "The forwarder does not run in this process (gate run --no-forward)."
    count = fw["backlog_count"]
    waiting = f"{count} charge{'' if count == 1 else 's'} waiting"
    if not fw["running"]:
        return "bad", f"The forwarder is stopped; {waiting}."
    when = time.strftime("%H:%M", time.localtime(since)) if since else "its last try"
    if trouble and trouble.startswith("no answer"):
        return "bad", f"Payment system unreachable since {when}, {waiting}."
    if trouble:
        return "bad", f"The payment system answers but has not taken the charges since {when}; {waiting}."
    if count:
        return "warn", f"Payment system reachable; {waiting} to be sent."
    return "ok", "Payment system reachable; every charge has been sent."


def last_tap(service: LaneService) -> dict[str, Any] | None:
    """The lane's last tap, followed to its end: an attendant's later approval changes what it came to."""
    outcome = service.lane.last_outcome
    if outcome is None:
        return None
    d = outcome.decision
    tap = {
        "verdict": outcome.verdict,
        "check_verdict": d.verdict,
        "decided_at": d.decided_at,
        "list": d.list_id.hex() if d.list_id else None,
        "shopper": d.shopper,
        "total": d.total,
        "currency": d.currency,
        "reasons": [{"code": r.code, "text": text_of(r.code), "message": r.message} for r in d.reasons],
        "charged": outcome.charged,
        "opened": outcome.opened,
        "approved_by": None,
        "approved_at": None,
        "receipt_delivered": outcome.receipt_delivered,
        "timings_ms": {k: round(v * 1000, 3) for k, v in outcome.timings.items()},
        "check_timings_ms": {k: round(v * 1000, 3) for k, v in d.timings.items()},
    }
    if outcome.verdict == "attendant" and d.list_id is not None:
        for event in service.store.recent_events(20):
            if event.list_id == d.list_id and event.attendant:
                tap.update(charged=True, opened=True, approved_by=event.attendant, approved_at=event.at)
                break
    return tap


def add_filters(app: Flask) -> None:
    app.add_template_filter(when, "when")
    app.add_template_filter(clock_time, "hhmm")
    app.add_template_filter(age, "age")
    app.add_template_filter(ms, "ms")
    app.add_template_filter(format_amount, "money")
    app.add_template_filter(hexid, "hexid")
    app.add_template_filter(compact_json, "compact")
    app.add_template_filter(text_of, "reason_text")


def when(at: float | None) -> str:
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def clock_time(at: float | None) -> str:
    return "-" if at is None else time.strftime("%H:%M:%S", time.localtime(at))


def age(at: float | None, now: float | None = None) -> str:
    if at is None:
        return "-"
    s = max(0, int((now or time.time()) - at))
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    if s < 172800:
        return f"{s // 3600} h ago"
    return f"{s // 86400} days ago"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def hexid(value: bytes | str | None) -> str:
    if value is None:
        return "-"
    return value.hex() if isinstance(value, bytes) else value


def compact_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
