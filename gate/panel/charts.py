"""The status page's last hour as pictures: tap-to-open p50/p99, taps per minute, denials by reason and the
outbox backlog, drawn on the server as SVG.

Server-side SVG needs no script, no library and no internet: the page is complete as sent, the CSP stays
`default-src 'self'`, and a live update replaces the charts like any other part of the page. Each chart
carries a caption in words with its numbers, for a reader who cannot see it and for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from gate.legality.reasons import text_of

HOUR_S = 3600
MINUTES = 60
LATENCY_BUCKET_MIN = 5  # tap-to-open percentiles over 5-minute buckets: a minute holds too few taps
OPEN_STEPS = ("nfc_read", "verify", "commit", "actuate")  # phone on the reader until the gate opened (ms)
W, H, PAD_L, PAD_B, PAD_T = 360, 130, 34, 18, 8
SVG_NS = "http://www.w3.org/2000/svg"


@dataclass(frozen=True)
class Chart:
    """One chart: its title, its SVG, and what it shows in one sentence."""

    key: str
    title: str
    svg: Markup
    caption: str


def last_hour(store: Any, now: float) -> list[Chart]:
    """The four charts of the hour before `now`, from the decisions and the outbox as recorded."""
    start = now - HOUR_S
    per_minute, denials = store.decision_counts(start, now)
    taps = [per_minute.get(m, 0) for m in range(MINUTES)]
    opens: list[list[float]] = [[] for _ in range(MINUTES // LATENCY_BUCKET_MIN)]
    # The opening's own steps are in its transition (the decision is written before the gate moves).
    for t in store.find_lane_events(kind="transition", since=start, until=now, limit=100_000):
        steps = t.data.get("timings_ms") or {}
        if t.data.get("to") == "open" and "actuate" in steps:
            bucket = min(MINUTES - 1, int((t.at - start) // 60)) // LATENCY_BUCKET_MIN
            opens[bucket].append(sum(float(steps.get(s, 0.0)) for s in OPEN_STEPS))
    p50 = [_percentile(b, 50) for b in opens]
    p99 = [_percentile(b, 99) for b in opens]
    all_opens = [v for b in opens for v in b]
    backlog = _backlog(store.outbox_times(start), start)
    return [
        Chart(
            "open",
            "Tap to open (ms)",
            _lines([("p99", p99), ("p50", p50)]),
            f"{len(all_opens)} gate openings; p50 {_ms(_percentile(all_opens, 50))}, "
            f"p99 {_ms(_percentile(all_opens, 99))} over the hour",
        ),
        Chart(
            "taps",
            "Taps per minute",
            _bars(taps),
            f"{sum(taps)} taps in the hour, at most {max(taps)} in one minute",
        ),
        Chart(
            "denials",
            "Denials by reason",
            _hbars([(f"{text_of(code)} ({code})", n) for code, n in denials.most_common(6)]),
            ", ".join(f"{code} {n}" for code, n in denials.most_common()) or "no denial in the hour",
        ),
        Chart(
            "backlog",
            "Charges waiting to be sent",
            _bars(backlog, step=True),
            f"{backlog[-1]} waiting now, at most {max(backlog)} in the hour",
        ),
    ]


def _backlog(times: list[tuple[float, float | None]], start: float) -> list[int]:
    """Charges created and not yet settled at the end of each minute."""
    out = []
    for m in range(1, MINUTES + 1):
        t = start + m * 60
        out.append(sum(1 for created, settled in times if created <= t and (settled is None or settled > t)))
    return out


def _percentile(values: list[float], p: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _frame(top: float, inner: str, title: str) -> Markup:
    """Axes, the y scale's top value, "60 min ago" and "now" under the x axis."""
    y0 = H - PAD_B
    return Markup(
        f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" xmlns="{SVG_NS}">'
        f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{y0}"/>'
        f'<line class="axis" x1="{PAD_L}" y1="{y0}" x2="{W}" y2="{y0}"/>'
        f'<text class="tick" x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end">{_num(top)}</text>'
        f'<text class="tick" x="{PAD_L - 4}" y="{y0}" text-anchor="end">0</text>'
        f'<text class="tick" x="{PAD_L}" y="{H - 4}">60 min ago</text>'
        f'<text class="tick" x="{W}" y="{H - 4}" text-anchor="end">now</text>'
        f"{inner}</svg>"
    )


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _num(v: float) -> str:
    return f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def _scale(values: list[float]) -> float:
    top = max([v for v in values if v is not None] or [0])
    return top if top > 0 else 1


def _bars(values: list[int], *, step: bool = False) -> Markup:
    top = _scale(values)
    slot = (W - PAD_L) / len(values)
    plot_h = H - PAD_B - PAD_T
    parts = []
    for i, v in enumerate(values):
        if not v:
            continue
        h = v / top * plot_h
        parts.append(
            f'<rect class="{"area" if step else "bar"}" x="{PAD_L + i * slot:.1f}" y="{H - PAD_B - h:.1f}" '
            f'width="{slot * (1 if step else 0.8):.1f}" height="{h:.1f}"><title>{v}</title></rect>'
        )
    return _frame(top, "".join(parts), "bars")


def _lines(series: list[tuple[str, list[float | None]]]) -> Markup:
    """A line and its points per series (a lone point still shows), and a legend at the top left."""
    top = _scale([v for _, values in series for v in values if v is not None])
    plot_h = H - PAD_B - PAD_T
    parts = []
    for n, (name, values) in enumerate(series):
        slot = (W - PAD_L) / len(values)
        points = [
            (PAD_L + (i + 0.5) * slot, H - PAD_B - v / top * plot_h)
            for i, v in enumerate(values)
            if v is not None
        ]
        if len(points) > 1:
            joined = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline class="line line-{name}" points="{joined}"/>')
        parts.extend(
            f'<circle class="dot line-{name}" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>' for x, y in points
        )
        lx = PAD_L + 8 + n * 48
        parts.append(f'<rect class="key line-{name}" x="{lx}" y="{PAD_T}" width="10" height="3"/>')
        parts.append(f'<text class="tick" x="{lx + 13}" y="{PAD_T + 5}">{name}</text>')
    return _frame(top, "".join(parts), "lines")


def _hbars(items: list[tuple[str, int]]) -> Markup:
    if not items:
        return Markup(
            f'<svg viewBox="0 0 {W} 40" role="img" aria-label="none" xmlns="{SVG_NS}">'
            '<text class="tick" x="0" y="24">No denial in the last hour.</text></svg>'
        )
    top = max(n for _, n in items)
    row = 34
    parts = []
    for i, (label, n) in enumerate(items):
        y = i * row
        w = n / top * (W - 40)
        parts.append(
            f'<text class="tick" x="0" y="{y + 11}">{escape(_cut(label, 62))}'
            f"<title>{escape(label)}</title></text>"
            f'<rect class="bar deny" x="0" y="{y + 15}" width="{w:.1f}" height="12"/>'
            f'<text class="tick" x="{w + 4:.1f}" y="{y + 25}">{n}</text>'
        )
    height = row * len(items)
    return Markup(
        f'<svg viewBox="0 0 {W} {height}" role="img" aria-label="denials" xmlns="{SVG_NS}">'
        f"{''.join(parts)}</svg>"
    )
