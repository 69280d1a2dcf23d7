"""`selfcheckout gate run` and `selfcheckout gate events`: a lane as a service, and what it decided."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click

from gate import config as lane_config
from gate.money import format_amount
from gate.notify import Notifier
from gate.service import open_lane
from gate.store import GateStore

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The lane config file (TOML).",
)


@click.command("run")
@CONFIG_OPTION
@click.option(
    "--mock-gpio", is_flag=True, help="gpiozero's MockFactory instead of the Pi's pins (bench, tests)."
)
@click.option("--no-forward", is_flag=True, help="Do not forward charges (another process does).")
@click.option("--no-panel", is_flag=True, help="Do not serve the technician panel ([panel] host and port).")
@click.option("-v", "--verbose", is_flag=True, help="Log every transition.")
def run_command(config_path: Path, mock_gpio: bool, no_forward: bool, no_panel: bool, verbose: bool) -> None:
    """Run one lane until SIGTERM: reader, gate I/O, the legality check, the outbox and its forwarder,
    and the technician panel on [panel] host:port (stopped first on the way out).

    Under systemd (Type=notify) it sends READY=1 once started, STATUS= on every transition, and WATCHDOG=1
    only at the end of each lane-loop turn, so a loop stuck in a reader call stops the pings.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cfg = lane_config.load(config_path)
    pin_factory = None
    if mock_gpio:
        from gpiozero.pins.mock import MockFactory

        pin_factory = MockFactory()
    if not no_panel:
        # Flask and the panel's pages (several MB, a fifth of the start-up): loaded only to be served.
        from gate import panel
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with (
        Notifier() as notifier,
        open_lane(cfg, pin_factory=pin_factory, notifier=notifier, forward=not no_forward) as service,
        contextlib.nullcontext() if no_panel else panel.Accounts(panel.accounts_path(cfg)) as accounts,
        contextlib.nullcontext() if no_panel else panel.serve(service, accounts) as panel_server,
    ):
        if panel_server is not None:
            click.echo(f"technician panel on {panel_server.url}", err=True)
        click.echo(f"lane {cfg.lane.gate_id} running: {service.lane.state}", err=True)
        service.lane.run(stop)


@click.command("events")
@CONFIG_OPTION
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@click.option("--lane-events", is_flag=True, help="Also list transitions, alarms and faults.")
def events_command(config_path: Path, limit: int, as_json: bool, lane_events: bool) -> None:
    """Recent decisions, newest first: verdict, every reason, and how long each step took."""
    cfg = lane_config.load(config_path, check_key_files=False)
    rows: list[dict[str, Any]] = []
    with GateStore(cfg.lane.database, create=False) as store:
        # A pass's commit (and actuate) time is known only once its transaction is on disk, so the lane
        # keeps it on the transition to "open", a few lane events after the decision.
        after_commit = {
            le.data["list"]: le.data.get("timings_ms", {})
            for le in store.recent_lane_events(limit * 10)
            if le.kind == "transition" and le.data.get("to") == "open" and le.data.get("list")
        }
        for e in store.recent_events(limit):
            timings = {k: round(v * 1000, 3) for k, v in e.timings.items()}
            if e.verdict == "pass" and e.list_id:
                for step, ms in after_commit.get(e.list_id.hex(), {}).items():
                    timings.setdefault(step, ms)
            rows.append(
                {
                    "type": "decision",
                    "id": e.id,
                    "at": e.at,
                    "verdict": e.verdict,
                    "reasons": [{"code": c, "message": m} for c, m in e.reasons],
                    "timings_ms": timings,
                    "list": e.list_id.hex() if e.list_id else None,
                    "shopper": e.shopper,
                    "total": e.total,
                    "currency": e.currency,
                    "attendant": e.attendant,
                }
            )
        if lane_events:
            for le in store.recent_lane_events(limit):
                rows.append({"type": le.kind, "id": le.id, "at": le.at, "detail": le.detail, "data": le.data})
    rows.sort(key=lambda r: r["at"], reverse=True)
    for row in rows[:limit]:
        if as_json:
            click.echo(json.dumps(row, sort_keys=True))
        else:
            click.echo(_line(row))


def _line(row: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["at"]))
    if row["type"] != "decision":
        return f"{when}  {row['type']:<12} {row['detail']}"
    total = format_amount(row["total"], row["currency"])
    steps = ", ".join(f"{k} {v:.2f} ms" for k, v in row["timings_ms"].items())
    head = f"{when}  {row['verdict'].upper():<9} list {(row['list'] or '-')[:12]}  {total}  ({steps})"
    reasons = "".join(f"\n    {r['code']}: {r['message']}" for r in row["reasons"])
    return head + reasons
