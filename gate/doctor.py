"""`selfcheckout doctor`: everything `gate run` needs, checked in one go, each answer one plain sentence.

Each check returns a Check (name, ok, one sentence a technician can act on, and the detail behind it),
never raises, and does not depend on another check having passed: a doctor that stops at the first
problem sends the technician back and forth. The config check is the very validation `gate run` runs at
start (gate.config.load), so the doctor cannot pass a config the lane would refuse.

The hardware is injected like everywhere else (a pin factory, a reader lister, a clock status source),
so the panel can run the same checks inside a running lane and the tests can run them on stand-ins.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate import config as lane_config
from gate import config_files
from gate.clock import ClockStatus, kernel_clock_status
from gate.config import LaneConfig
from gate.errors import ConfigError, GateError

MIN_FREE_BYTES = 64 * 1024 * 1024  # a day of a busy lane's events is a few MiB; this leaves room for weeks


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table."""

    name: str
    ok: bool
    sentence: str  # one plain sentence: what is wrong and what to do, or what was found
    detail: str = ""  # the evidence: paths, versions, error messages


@dataclass
class Probes:
    """Where the doctor looks for hardware and time; the defaults are the machine's own."""

    pin_factory: Any = None  # a gpiozero pin factory; None: the one gpiozero would pick for `gate run`
    list_readers: Callable[[], list[str]] | None = None  # None: ask pcscd through pyscard
    clock_status: Callable[[], ClockStatus] = kernel_clock_status
    min_free_bytes: int = MIN_FREE_BYTES
    extra: list[Callable[[LaneConfig], Check]] = field(default_factory=list)  # more checks, e.g. peers


def doctor(path: Path, probes: Probes | None = None) -> list[Check]:
    """Every check for the lane config at `path`; without a valid config, the config's problems only."""
    try:
        cfg = lane_config.load(path, check_key_files=False)
    except ConfigError as exc:
        return [Check("config", False, exc.problems[0], "\n".join(exc.problems[1:]))]
    first = Check(
        "config",
        True,
        f"{path} is valid: store {cfg.lane.store_id}, gate {cfg.lane.gate_id}.",
    )
    return [first, *run_checks(cfg, probes)]


def run_checks(cfg: LaneConfig, probes: Probes | None = None) -> list[Check]:
    """Every check but the config's own (the config is given, so it parsed already)."""
    probes = probes or Probes()
    payments, feed = _payments_checks(cfg)
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("keys", lambda: check_key_files(cfg)),
        ("reader", lambda: check_reader(cfg, probes.list_readers)),
        ("scanner", lambda: check_scanner(cfg)),
        ("gpio", lambda: check_gpio(probes.pin_factory)),
        ("database", lambda: check_database(cfg)),
        ("disk", lambda: check_disk(cfg, probes.min_free_bytes)),
        ("clock", lambda: check_clock(probes.clock_status)),
        ("payments", payments),
        ("feed", feed),
        ("lane", lambda: check_running_lane(cfg)),
        ("peers", lambda: _check_peers(cfg)),
        *((getattr(extra, "__name__", "extra"), lambda extra=extra: extra(cfg)) for extra in probes.extra),
    ]
    return [_safely(name, step) for name, step in steps]


def _check_peers(cfg: LaneConfig) -> Check:
    from gate.peers.doctor import check_peers  # it imports Check from here

    return check_peers(cfg)


def _safely(name: str, step: Callable[[], Check]) -> Check:
    try:
        return step()
    except Exception as exc:  # a check that breaks is a problem to report, never a doctor that stops
        return Check(name, False, f"The check itself failed: {type(exc).__name__}: {exc}.")


def check_key_files(cfg: LaneConfig) -> Check:
    problems = config_files.problems(cfg)
    if problems:
        return Check("keys", False, problems[0].split(": key ", 1)[-1], "\n".join(problems))
    extras = ["panel secret"] if cfg.panel.secret_key_file else []
    return Check(
        "keys",
        True,
        f"The gate key and {len(cfg.payments.public_key_files)} payment-system key(s)"
        f"{''.join(', ' + e for e in extras)} are readable and valid.",
    )


def check_reader(cfg: LaneConfig, list_readers: Callable[[], list[str]] | None) -> Check:
    pattern = cfg.reader.name_pattern
    if list_readers is None:
        try:
            from drivers.nfc_pcsc import list_readers
        except ModuleNotFoundError as exc:
            if exc.name != "smartcard":
                raise
            return Check(
                "reader", False, "pyscard is not installed: install the nfc extra (pip install '.[nfc]')."
            )
    try:
        readers = list_readers()
    except Exception as exc:
        return Check("reader", False, "The PC/SC service does not answer: is pcscd running?", str(exc))
    matching = [r for r in readers if re.search(pattern, r)]
    if not matching:
        return Check(
            "reader",
            False,
            f"No NFC reader matches reader.name_pattern {pattern!r}: plug it in, or fix the pattern.",
            f"readers seen: {readers or 'none'}",
        )
    return Check("reader", True, f"The NFC reader {matching[0]!r} is present.")


def check_scanner(cfg: LaneConfig) -> Check:
    if cfg.scanner is None:
        return Check("scanner", True, "No scanner is configured ([scanner] absent).")
    url = cfg.scanner.port_url
    if "://" in url:
        import serial

        try:
            serial.serial_for_url(url, do_not_open=True)
        except (ValueError, serial.SerialException) as exc:
            return Check("scanner", False, f"The scanner URL {url!r} is not one pyserial can open.", str(exc))
        return Check("scanner", True, f"The scanner URL {url!r} is valid.")
    if not os.path.exists(url):
        return Check("scanner", False, f"The scanner {url} is not plugged in (no such device).")
    if not os.access(url, os.R_OK | os.W_OK):
        return Check("scanner", False, f"The scanner {url} is there but this user cannot open it (group?).")
    return Check("scanner", True, f"The scanner {url} is present.")


def check_gpio(pin_factory: Any) -> Check:
    if pin_factory is None:
        from gpiozero import Device
        from gpiozero.exc import BadPinFactory

        try:
            pin_factory = Device._default_pin_factory()  # what a device made by `gate run` would get
        except BadPinFactory as exc:
            return Check(
                "gpio",
                False,
                "No GPIO backend loads: install the pi extra on a Raspberry Pi (lgpio).",
                str(exc),
            )
        try:
            return Check("gpio", True, f"The GPIO backend {type(pin_factory).__name__} loads.")
        finally:
            pin_factory.close()
    return Check("gpio", True, f"The GPIO backend {type(pin_factory).__name__} loads.")


def check_database(cfg: LaneConfig) -> Check:
    path = cfg.lane.database
    if not path.exists():
        return Check(
            "database",
            False,
            f"The database {path} is missing: run `selfcheckout gate init`, or restore a backup.",
        )
    if path.stat().st_size == 0:
        return Check(
            "database",
            False,
            f"The database {path} is empty (0 bytes): restore a backup, or run `selfcheckout gate init`.",
        )
    try:
        with _read_only(path) as conn:
            result = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as exc:
        return Check("database", False, f"The database {path} cannot be read: restore a backup.", str(exc))
    if result != ["ok"]:
        return Check(
            "database",
            False,
            f"The database {path} fails its integrity check: restore a backup.",
            "\n".join(result[:10]),
        )
    try:
        with _read_only(path) as conn:
            row = conn.execute("SELECT value FROM identity WHERE key = 'instance'").fetchone()
    except sqlite3.Error:
        row = None  # made by a release before instance ids: `gate run` adds one when it migrates
    instance = f" (instance {row[0]})" if row else ""
    return Check("database", True, f"The database {path} passes its integrity check{instance}.")


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection: the doctor never creates, migrates or writes the database it examines."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    try:
        yield conn
    finally:
        conn.close()


def check_disk(cfg: LaneConfig, min_free_bytes: int) -> Check:
    folder = cfg.lane.database.parent
    try:
        usage = shutil.disk_usage(folder)
    except OSError as exc:
        return Check("disk", False, f"Cannot measure the free space of {folder}.", str(exc))
    free_mib = usage.free / 2**20
    if usage.free < min_free_bytes:
        return Check(
            "disk",
            False,
            f"Only {free_mib:.0f} MiB free for the database in {folder}: free space, or prune (retention).",
            f"at least {min_free_bytes / 2**20:.0f} MiB wanted",
        )
    return Check("disk", True, f"{free_mib:.0f} MiB free for the database in {folder}.")


def check_clock(clock_status: Callable[[], ClockStatus]) -> Check:
    status = clock_status()
    if not status.synchronised:
        return Check(
            "clock",
            False,
            "The clock is not synchronised: check the time service (timedatectl, NTP) and the network.",
            status.detail,
        )
    return Check("clock", True, f"The clock is {status.detail}.")


def _payments_checks(cfg: LaneConfig) -> tuple[Callable[[], Check], Callable[[], Check]]:
    """Reachable-and-enrolled and the feed's age share one signed feed request (it names the active gates)."""
    found: dict[str, Any] = {}

    def reach() -> Check:
        found.update(_fetch_feed(cfg))
        return _enrolment(cfg, found)

    return reach, lambda: _feed_age(cfg, found)


def _local_feed_version(cfg: LaneConfig) -> int | None:
    return _meta(cfg, "feed_version")


def _meta(cfg: LaneConfig, key: str) -> int | None:
    try:
        with _read_only(cfg.lane.database) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def _age(cfg: LaneConfig) -> str:
    applied = _meta(cfg, "feed_applied_at")
    if not applied:
        return "never applied"
    seconds = max(0, int(time.time()) - applied)
    return (
        f"applied {seconds // 3600} h {seconds % 3600 // 60} min ago"
        if seconds >= 3600
        else (f"applied {seconds // 60} min {seconds % 60} s ago")
    )


def _fetch_feed(cfg: LaneConfig) -> dict[str, Any]:
    import requests

    from gate.http import environment_session
    from gate.protocol.keys import TrustedKeys
    from gate.sync import verify_feed

    since = _local_feed_version(cfg) or 0
    nonce = os.urandom(32)
    url = cfg.payments.url.rstrip("/") + "/v1/feed"
    try:
        trusted = TrustedKeys.from_files(cfg.payments.public_key_files)
    except GateError as exc:
        return {"error": f"no trusted payment-system key to check its answer with: {exc}"}
    try:
        with environment_session(url) as session:
            response = session.get(
                url, params={"since": since, "nonce": nonce.hex()}, timeout=cfg.payments.timeout_s
            )
    except requests.RequestException as exc:
        return {"error": f"{cfg.payments.url} does not answer ({type(exc).__name__})", "detail": str(exc)}
    if response.status_code != 200:
        return {"error": f"{cfg.payments.url} answered {response.status_code}", "detail": response.text[:200]}
    try:
        raw = base64.b64decode(response.json()["feed"], validate=True)
        feed = verify_feed(raw, trusted=trusted, store_id=cfg.lane.store_id, since=since, nonce=nonce)
    except (ValueError, KeyError, TypeError, GateError) as exc:
        return {"error": f"the payment system's feed does not verify: {exc}"}
    return {"feed": feed, "since": since}


def _enrolment(cfg: LaneConfig, found: dict[str, Any]) -> Check:
    from gate.protocol.keys import key_id, read_secret_key

    if "error" in found:
        return Check(
            "payments",
            False,
            f"The payment system is not reachable: {found['error']}.",
            found.get("detail", ""),
        )
    keys = found["feed"].gate_keys().get(cfg.lane.gate_id, ())
    if not keys:
        return Check(
            "payments",
            False,
            f"The payment system answers, but gate {cfg.lane.gate_id} is not enrolled (or was revoked).",
        )
    try:
        own = read_secret_key(cfg.lane.gate_key_file).public_key
    except GateError as exc:
        return Check(
            "payments", False, "The payment system answers; this gate's key cannot be read.", str(exc)
        )
    if own not in keys:
        return Check(
            "payments",
            False,
            f"Gate {cfg.lane.gate_id} is enrolled with another key than this gate's: enrol it again.",
            f"enrolled: {', '.join(key_id(k) for k in keys)}; here: {key_id(own)}",
        )
    return Check(
        "payments",
        True,
        f"The payment system answers and gate {cfg.lane.gate_id} is enrolled ({key_id(own)}).",
    )


def _feed_age(cfg: LaneConfig, found: dict[str, Any]) -> Check:
    local = _local_feed_version(cfg)
    if local is None:
        return Check("feed", False, "No feed is recorded: the database cannot be read.")
    if "feed" not in found:
        return Check(
            "feed",
            False,
            f"The feed is at version {local} ({_age(cfg)}); the payment system's latest is unknown.",
        )
    latest = found["feed"].latest
    if local < latest:
        return Check(
            "feed",
            False,
            f"The feed is at version {local}, {latest - local} behind the payment system: is it syncing?",
            _age(cfg),
        )
    return Check("feed", True, f"The feed is up to date (version {local}, {_age(cfg)}).")


def check_running_lane(cfg: LaneConfig) -> Check:
    """How the lane running on this config is, by its panel's /api/health (no login: no shopper data)."""
    import requests

    from gate.http import environment_session

    host = cfg.panel.host if cfg.panel.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = f"http://{host if ':' not in host else f'[{host}]'}:{cfg.panel.port}/api/health"
    try:
        with environment_session(url) as session:
            health = session.get(url, timeout=2.0).json()
    except (requests.RequestException, ValueError):
        return Check("lane", True, f"No lane answers at {url} (not running, or without its panel).")
    problems = health.get("problems") or []
    if problems:
        return Check(
            "lane",
            False,
            f"The running lane is {health.get('lane_state')}: {problems[0]}",
            "\n".join(problems[1:]),
        )
    return Check("lane", True, f"The running lane is {health.get('lane_state')}, with no problem.")
