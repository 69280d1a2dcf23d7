"""The lane config: one TOML file, every key validated before anything touches hardware.

A technician edits this file on a Pi with no one to ask, so every mistake is reported as one line naming
the file, the key, the value found and what was expected. Unknown keys are errors because a misspelt key
that silently falls back to a default is how a gate ends up wired fail-secure by accident.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.errors import ConfigError
from gate.examples import example


def _spec(expect: str = "", *, check: typing.Callable[[Any], bool] | None = None, **kw: Any) -> Any:
    """A dataclass field that carries the human description of what is expected and an extra check."""
    meta = {"expect": expect, "check": check}
    if "default" in kw or "default_factory" in kw:
        return field(metadata=meta, **kw)
    return field(metadata=meta)


def _positive(v: Any) -> bool:
    return v > 0 and math.isfinite(v)


def _non_negative(v: Any) -> bool:
    return v >= 0 and math.isfinite(v)


def _bcm_pin(v: Any) -> bool:
    return 0 <= v <= 27


_C = typing.TypeVar("_C")

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _ident(v: Any) -> bool:
    return bool(_ID.fullmatch(v))


def _currency(v: Any) -> bool:
    return bool(re.fullmatch(r"[A-Z]{3}", v))


def _http_url(v: Any) -> bool:
    return bool(re.match(r"^https?://[^\s/]+", v))


def _regex(v: Any) -> bool:
    try:
        re.compile(v)
    except re.error:
        return False
    return bool(v)


@dataclass(frozen=True, kw_only=True)
class LaneSection:
    store_id: str = _spec("an id of letters, digits, '.', '_' or '-'", check=_ident)
    gate_id: str = _spec("an id of letters, digits, '.', '_' or '-'", check=_ident)
    currency: str = _spec("an ISO 4217 code such as 'EUR'", check=_currency)
    database: Path = _spec("a path to the gate's SQLite database")
    gate_key_file: Path = _spec("a path to the gate's Ed25519 secret key file")


@dataclass(frozen=True, kw_only=True)
class PaymentsSection:
    url: str = _spec("an http:// or https:// URL", check=_http_url)
    public_key_files: list[Path] = _spec(
        "a non-empty list of paths to trusted payment-system public keys", check=bool
    )
    timeout_s: float = _spec("seconds > 0", check=_positive, default=5.0)


@dataclass(frozen=True, kw_only=True)
class ScannerSection:
    port_url: str = _spec("a pyserial port or URL such as '/dev/ttyACM0' or 'loop://'", check=bool)
    baudrate: int = _spec("a baud rate > 0", check=_positive, default=9600)
    terminator: str = _spec(
        "one of 'CR', 'LF', 'CRLF'", check=lambda v: v in ("CR", "LF", "CRLF"), default="CR"
    )
    aim_prefix: bool = _spec("true or false", default=False)
    debounce_ms: int = _spec("milliseconds >= 0", check=_non_negative, default=800)
    max_line: int = _spec("a length in bytes > 0", check=_positive, default=64)
    reconnect_max_s: float = _spec("seconds > 0", check=_positive, default=5.0)


@dataclass(frozen=True, kw_only=True)
class ReaderSection:
    name_pattern: str = _spec("a valid regular expression matching the PC/SC reader name", check=_regex)
    exchange_timeout_ms: int = _spec("milliseconds > 0", check=_positive, default=1000)


@dataclass(frozen=True, kw_only=True)
class GpioSection:
    relay_pin: int = _spec("a BCM pin number 0-27", check=_bcm_pin)
    relay_active_high: bool = _spec("true or false", default=True)
    fail_mode: str = _spec(
        "'fail-safe' (unpowered = open) or 'fail-secure' (unpowered = locked)",
        check=lambda v: v in ("fail-safe", "fail-secure"),
        default="fail-safe",
    )
    door_sensor_pin: int = _spec("a BCM pin number 0-27", check=_bcm_pin)
    door_open_when_high: bool = _spec("true or false", default=True)
    beam_pin: int = _spec("a BCM pin number 0-27", check=_bcm_pin)
    beam_blocked_when_high: bool = _spec("true or false", default=True)
    green_pin: int = _spec("a BCM pin number 0-27", check=_bcm_pin)
    red_pin: int = _spec("a BCM pin number 0-27", check=_bcm_pin)
    buzzer_pin: int = _spec("a BCM pin number 0-27", check=_bcm_pin)
    fire_alarm_pin: int = _spec("a BCM pin number 0-27", check=_bcm_pin)
    fire_alarm_when_high: bool = _spec("true or false", default=True)
    exit_button_pin: int | None = _spec("a BCM pin number 0-27, or absent", check=_bcm_pin, default=None)
    debounce_ms: int = _spec("milliseconds >= 0", check=_non_negative, default=20)


@dataclass(frozen=True, kw_only=True)
class TimingsSection:
    open_timeout_s: float = _spec("seconds > 0", check=_positive, default=8.0)
    close_after_passage_ms: int = _spec("milliseconds >= 0", check=_non_negative, default=300)
    beam_blocked_fault_s: float = _spec("seconds > 0", check=_positive, default=120.0)
    door_fault_ms: int = _spec("milliseconds > 0", check=_positive, default=1500)
    denied_display_ms: int = _spec("milliseconds >= 0", check=_non_negative, default=1500)
    repeat_window_s: float = _spec("seconds >= 0", check=_non_negative, default=120.0)


@dataclass(frozen=True, kw_only=True)
class PolicySection:
    price_grace_s: int = _spec("seconds >= 0", check=_non_negative, default=900)
    max_items: int = _spec("a count > 0", check=_positive, default=200)
    max_quantity: int = _spec("a count > 0", check=_positive, default=99)
    max_list_age_s: int = _spec("seconds > 0", check=_positive, default=86400)
    clock_skew_s: int = _spec("seconds >= 0", check=_non_negative, default=120)
    audit_per_mille: int = _spec("an integer 0-1000", check=lambda v: 0 <= v <= 1000, default=0)
    audit_seed: int = _spec("an integer", default=0)
    require_synced_clock: bool = _spec("true or false", default=False)
    attendant_categories: list[str] = _spec(
        "a list of catalog category names", default_factory=lambda: ["age-restricted", "security-tagged"]
    )


@dataclass(frozen=True, kw_only=True)
class OfflineSection:
    max_amount: int = _spec("an amount in minor units > 0", check=_positive, default=50_000)
    max_count: int = _spec("a count > 0", check=_positive, default=500)
    max_age_s: int = _spec("seconds > 0", check=_positive, default=86_400)


@dataclass(frozen=True, kw_only=True)
class RetentionSection:
    events_days: int = _spec("days > 0", check=_positive, default=90)
    settled_charges_days: int = _spec("days > 0", check=_positive, default=30)
    prune_every_s: float = _spec("seconds > 0", check=_positive, default=3600.0)


@dataclass(frozen=True, kw_only=True)
class ForwarderSection:
    backoff_base_ms: int = _spec("milliseconds > 0", check=_positive, default=500)
    backoff_cap_ms: int = _spec("milliseconds > 0", check=_positive, default=60_000)
    sync_interval_s: float = _spec("seconds > 0", check=_positive, default=60.0)


@dataclass(frozen=True, kw_only=True)
class Gs1Layout:
    """A GS1 restricted-circulation prefix whose digits embed a price or a weight."""

    prefix: str = _spec("two digits 20-29", check=lambda v: bool(re.fullmatch(r"2[0-9]", v)))
    kind: str = _spec("'price' or 'weight'", check=lambda v: v in ("price", "weight"))
    item_digits: int = _spec("digits of the item reference, 1-9", check=lambda v: 1 <= v <= 9)
    value_digits: int = _spec("digits of the embedded value, 1-6", check=lambda v: 1 <= v <= 6)
    value_check_digit: bool = _spec("true when a price check digit sits before the value", default=False)


@dataclass(frozen=True, kw_only=True)
class BarcodesSection:
    gs1: list[Gs1Layout] = _spec("a list of [[barcodes.gs1]] tables", default_factory=list)


@dataclass(frozen=True, kw_only=True)
class PanelSection:
    host: str = _spec("an address to listen on", check=bool, default="127.0.0.1")
    port: int = _spec("a TCP port 1-65535", check=lambda v: 1 <= v <= 65535, default=8080)
    secret_key_file: Path | None = _spec("a path to the panel's session secret, or absent", default=None)
    accounts_file: Path | None = _spec(
        "a path to the panel's accounts and sessions (SQLite), or absent for panel.db beside the database",
        default=None,
    )
    session_idle_s: float = _spec(
        "seconds a panel session may stay unused, 60-86400", check=lambda v: 60 <= v <= 86400, default=900.0
    )


def _nats_urls(v: Any) -> bool:
    return bool(v) and all(re.fullmatch(r"nats://[^\s/]+:[0-9]{1,5}", u) for u in v)


@dataclass(frozen=True, kw_only=True)
class PeersSection:
    """The other lanes of the store, told of every pass over NATS (docs/operations.md)."""

    servers: list[str] = _spec(
        "a non-empty list of nats://host:port URLs, this lane's own node first", check=_nats_urls
    )
    replicas: int = _spec("copies of the store's stream, 1-5 (3 for three lanes or more)",
                          check=lambda v: 1 <= v <= 5, default=3)  # fmt: skip
    cluster_port: int = _spec("a TCP port 1-65535 the nodes route on", check=lambda v: 1 <= v <= 65535,
                              default=6222)  # fmt: skip
    catch_up_timeout_s: float = _spec("seconds > 0", check=_positive, default=5.0)
    publish_timeout_s: float = _spec("seconds > 0", check=_positive, default=2.0)


@dataclass(frozen=True, kw_only=True)
class LaneConfig:
    lane: LaneSection = _spec()
    payments: PaymentsSection = _spec()
    scanner: ScannerSection | None = _spec(default=None)  # the lane's scanner, for attendants' audits
    reader: ReaderSection = _spec()
    gpio: GpioSection = _spec()
    timings: TimingsSection = _spec(default_factory=TimingsSection)
    policy: PolicySection = _spec(default_factory=PolicySection)
    offline: OfflineSection = _spec(default_factory=OfflineSection)
    forwarder: ForwarderSection = _spec(default_factory=ForwarderSection)
    retention: RetentionSection = _spec(default_factory=RetentionSection)
    barcodes: BarcodesSection = _spec(default_factory=BarcodesSection)
    panel: PanelSection = _spec(default_factory=PanelSection)
    peers: PeersSection | None = _spec(default=None)  # absent: the store's only lane
    source: Path = field(default=Path("<memory>"), compare=False)


EXAMPLE = example("lane.example.toml")


def example_with(**sections: dict[str, Any] | None) -> str:
    """The documented example config with `sections` laid over it, as TOML text (demo, bench, tests).

    Keys are merged into the example's tables, so a misspelt override is still refused when loaded. A
    section given as None is left out (an optional one, such as [scanner] on a machine with no scanner).
    """
    return overlay(EXAMPLE, **sections)


def overlay(example: Path, **sections: dict[str, Any]) -> str:
    """The TOML file `example` with `sections` merged into its tables, as TOML text."""
    data = tomllib.loads(example.read_text())
    for name, values in sections.items():
        if values is None:
            data.pop(name, None)
        else:
            data.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, table in data.items():
        arrays = {k: v for k, v in table.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        lines += [f"[{name}]", *(f"{k} = {_toml(v)}" for k, v in table.items() if k not in arrays), ""]
        for sub, entries in arrays.items():
            for entry in entries:
                lines += [f"[[{name}.{sub}]]", *(f"{k} = {_toml(v)}" for k, v in entry.items()), ""]
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def load(path: str | os.PathLike[str], *, check_key_files: bool = True) -> LaneConfig:
    """Read and validate a lane config file; relative paths inside it are taken from its own folder.

    Every mistake is found before any is reported (ConfigError.problems lists them all), and with
    `check_key_files` the files the config names are read and checked exactly as `gate run` reads them:
    `config check` and `gate run` share this one function, so neither accepts what the other refuses.
    """
    path = Path(path)
    return from_dict(read_toml(path), source=path, check_key_files=check_key_files)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's table, or one ConfigError line saying why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def from_dict(
    data: dict[str, Any], *, source: Path = Path("<memory>"), check_key_files: bool = False
) -> LaneConfig:
    """Validate an already-parsed config table; used by load() and by tools that build configs."""
    from gate import config_files

    return from_table(LaneConfig, data, source, config_files.problems if check_key_files else None)


def from_table(
    cls: type[_C],
    data: dict[str, Any],
    source: Path,
    more_problems: typing.Callable[[_C], list[str]] | None = None,
) -> _C:
    """A whole config file's dataclass (the lane's, the kiosk's), built from its parsed table.

    Relative paths are taken from the file's folder; `more_problems` checks the built config further (the
    files it names). Every mistake is reported at once, in one ConfigError.
    """
    base = source.parent if source.name != "<memory>" else Path.cwd()
    problems: list[str] = []
    try:
        config = dataclasses.replace(_build(cls, data, "", source, base, problems), source=source)
    except _Incomplete:
        config = None
    if config is not None and more_problems is not None:
        problems += more_problems(config)
    if problems:
        raise ConfigError.of(problems, source)
    assert config is not None
    return config


# Other config files of the project (the payment system's, payments/config.py) declare their tables with
# the same `spec` fields and are checked by the same rules, so every file reports mistakes alike.
spec = _spec


def build(cls: type, data: dict[str, Any], source: Path) -> Any:
    """Validate a parsed table against a dataclass of `spec` fields; relative paths from source's folder."""
    problems: list[str] = []
    try:
        built = _build(cls, data, "", source, source.parent, problems)
    except _Incomplete:
        built = None
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more, problems)
    return built


def _gpio_problems(gpio: GpioSection) -> list[tuple[str, Any, str]]:
    seen: dict[int, str] = {}
    out = []
    for f in dataclasses.fields(gpio):
        pin = getattr(gpio, f.name)
        if not f.name.endswith("_pin") or pin is None:
            continue
        if pin in seen:
            out.append((f.name, pin, f"a pin not already used by gpio.{seen[pin]}"))
        else:
            seen[pin] = f.name
    return out


def _forwarder_problems(fwd: ForwarderSection) -> list[tuple[str, Any, str]]:
    if fwd.backoff_cap_ms < fwd.backoff_base_ms:
        return [("backoff_cap_ms", fwd.backoff_cap_ms, f"at least backoff_base_ms ({fwd.backoff_base_ms})")]
    return []


def _barcodes_problems(barcodes: BarcodesSection) -> list[tuple[str, Any, str]]:
    prefixes = [layout.prefix for layout in barcodes.gs1]
    out: list[tuple[str, Any, str]] = []
    if len(prefixes) != len(set(prefixes)):
        out.append(("gs1", prefixes, "each prefix at most once"))
    for i, layout in enumerate(barcodes.gs1):
        digits = layout.item_digits + layout.value_digits + (1 if layout.value_check_digit else 0)
        if digits != 10:
            out.append(
                (
                    f"gs1[{i}]",
                    digits,
                    "item_digits + value_digits (+1 for a price check digit) = 10 for an EAN-13",
                )
            )
    return out


TableRule = typing.Callable[[Any], list[tuple[str, Any, str]]]

# Rules between keys of one table, checked once the table's own keys are valid.
_TABLE_RULES: dict[type, TableRule] = {
    GpioSection: _gpio_problems,
    ForwarderSection: _forwarder_problems,
    BarcodesSection: _barcodes_problems,
}


def table_rule(cls: type, rule: TableRule) -> None:
    """Check `rule` on every `cls` table built (another config file's table: the kiosk's [session]).

    The rule answers (key, value found, what was expected) for each broken key, as a table's own keys are
    reported.
    """
    _TABLE_RULES[cls] = rule


class _Invalid(Exception):
    """One bad value, as its line of the report."""


class _Incomplete(Exception):
    """A table held bad values (already reported), so it could not be built."""


def problem(source: Path, key: str, found: Any, expected: str) -> str:
    """One mistake as the line a technician reads: the file, the key, what was found, what was expected."""
    return f"{source}: key '{key}': found {found!r}, expected {expected}"


def _fail(source: Path, key: str, found: Any, expected: str) -> typing.NoReturn:
    raise _Invalid(problem(source, key, found, expected))


def _build(cls: type, data: Any, prefix: str, source: Path, base: Path, problems: list[str]) -> Any:
    """Build one table, adding every bad key of it (and of the tables inside it) to `problems`."""
    where = prefix.rstrip(".") or "(top level)"
    if not isinstance(data, dict):
        problems.append(problem(source, where, data, "a table"))
        raise _Incomplete
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    complete = True
    for name in sorted(set(data) - set(fields)):
        problems.append(
            problem(source, prefix + name, data[name], f"no such key (known here: {', '.join(fields)})")
        )
        complete = False
    kwargs = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                expect = f.metadata.get("expect") or "a table"
                problems.append(problem(source, key, None, f"a value: this key is required ({expect})"))
                complete = False
            continue
        try:
            kwargs[name] = _convert(hints[name], data[name], key, f.metadata, source, base, problems)
        except _Invalid as exc:
            problems.append(str(exc))
            complete = False
        except _Incomplete:
            complete = False
    if not complete:
        raise _Incomplete
    built = cls(**kwargs)
    rule = _TABLE_RULES.get(cls)
    broken = rule(built) if rule else []
    problems += [problem(source, prefix + key, found, expected) for key, found, expected in broken]
    if broken:
        raise _Incomplete
    return built


def _convert(
    hint: Any, value: Any, key: str, meta: Any, source: Path, base: Path, problems: list[str]
) -> Any:
    expect = meta.get("expect") or "a table"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = next(a for a in typing.get_args(hint) if a is not type(None))
        return _convert(inner, value, key, meta, source, base, problems)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".", source, base, problems)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            _fail(source, key, value, expect)
        if dataclasses.is_dataclass(item):
            out = _build_all(item, value, key, source, base, problems)
        else:
            out = [_scalar(item, v, f"{key}[{i}]", expect, source, base) for i, v in enumerate(value)]
        check = meta.get("check")
        if check and not check(out):
            _fail(source, key, value, expect)
        return out
    out = _scalar(hint, value, key, expect, source, base)
    check = meta.get("check")
    if check and not check(out):
        _fail(source, key, value, expect)
    return out


def _scalar(hint: Any, value: Any, key: str, expect: str, source: Path, base: Path) -> Any:
    # bool is an int in Python; TOML keeps them apart and so do we.
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif hint is Path:
        ok = isinstance(value, str) and value != ""
        if ok:
            p = Path(value).expanduser()
            value = p if p.is_absolute() else base / p
    else:  # a schema typo, not a user error
        raise TypeError(f"unsupported config type {hint!r} for {key}")
    if not ok:
        _fail(source, key, value, expect)
    return value


def _build_all(
    cls: type, values: list[Any], key: str, source: Path, base: Path, problems: list[str]
) -> list[Any]:
    """Build every table of an array of tables, reporting the bad ones all before giving up."""
    out, complete = [], True
    for i, v in enumerate(values):
        try:
            out.append(_build(cls, v, f"{key}[{i}].", source, base, problems))
        except _Incomplete:
            complete = False
    if not complete:
        raise _Incomplete
    return out
