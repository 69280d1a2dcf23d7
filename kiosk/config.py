"""The kiosk config: one TOML file, validated key by key the way the lane's is (gate.config).

The scanner, reader and payment-system tables are the lane's own, so a technician writes them the
same way on both Pis; the `[kiosk]`, `[screen]`, `[session]` and `[policy]` tables are the kiosk's. Every
mistake is one line naming the file and the key (gate.errors.ConfigError).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.config import (
    PaymentsSection,
    ReaderSection,
    ScannerSection,
    _build,
    _currency,
    _ident,
    _Incomplete,
    _non_negative,
    _positive,
    _spec,
    overlay,
)
from gate.errors import ConfigError
from gate.examples import example

LANGUAGES = ("en", "de")  # the screen's translations (kiosk/translations)
EXAMPLE = example("kiosk.example.toml")


@dataclass(frozen=True, kw_only=True)
class KioskSection:
    kiosk_id: str = _spec("an id of letters, digits, '.', '_' or '-'", check=_ident)
    store_id: str = _spec("an id of letters, digits, '.', '_' or '-'", check=_ident)
    currency: str = _spec("an ISO 4217 code such as 'EUR'", check=_currency)
    state_dir: Path = _spec("a folder the kiosk may write its session marker to")


@dataclass(frozen=True, kw_only=True)
class ScreenSection:
    host: str = _spec(
        "an address to listen on (keep it 127.0.0.1: the screen is local)", check=bool, default="127.0.0.1"
    )
    port: int = _spec("a TCP port 1-65535", check=lambda v: 1 <= v <= 65535, default=8090)
    languages: list[str] = _spec(
        f"a non-empty list of {', '.join(LANGUAGES)}",
        check=lambda v: bool(v) and set(v) <= set(LANGUAGES),
        default_factory=lambda: list(LANGUAGES),
    )


@dataclass(frozen=True, kw_only=True)
class SessionSection:
    idle_warning_s: float = _spec("seconds > 0", check=_positive, default=90.0)
    idle_clear_s: float = _spec("seconds > 0, more than idle_warning_s", check=_positive, default=120.0)
    confirm_timeout_s: float = _spec("seconds > 0", check=_positive, default=90.0)
    done_display_s: float = _spec("seconds >= 0", check=_non_negative, default=15.0)
    catalog_refresh_s: float = _spec("seconds > 0", check=_positive, default=60.0)


@dataclass(frozen=True, kw_only=True)
class KioskPolicySection:
    attendant_categories: list[str] = _spec(
        "a list of catalog category names", default_factory=lambda: ["age-restricted", "security-tagged"]
    )
    blocked_codes: list[str] = _spec("a list of catalog codes not sold at the kiosk", default_factory=list)


@dataclass(frozen=True, kw_only=True)
class KioskConfig:
    kiosk: KioskSection = _spec()
    payments: PaymentsSection = _spec()
    scanner: ScannerSection = _spec()
    reader: ReaderSection = _spec()
    screen: ScreenSection = _spec(default_factory=ScreenSection)
    session: SessionSection = _spec(default_factory=SessionSection)
    policy: KioskPolicySection = _spec(default_factory=KioskPolicySection)
    source: Path = field(default=Path("<memory>"), compare=False)


def load(path: str | os.PathLike[str]) -> KioskConfig:
    """Read and validate a kiosk config; relative paths in it are taken from its own folder."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return from_dict(data, source=path)


def from_dict(data: dict[str, Any], *, source: Path = Path("<memory>")) -> KioskConfig:
    base = source.parent if source.name != "<memory>" else Path.cwd()
    problems: list[str] = []
    try:
        config = dataclasses.replace(_build(KioskConfig, data, "", source, base, problems), source=source)
    except _Incomplete:
        config = None
    if config is not None and config.session.idle_clear_s <= config.session.idle_warning_s:
        problems.append(
            f"{source}: key 'session.idle_clear_s': found {config.session.idle_clear_s!r}, "
            f"expected more than session.idle_warning_s ({config.session.idle_warning_s})"
        )
    if problems:
        raise ConfigError.of(problems, source)
    assert config is not None
    return config


def example_with(**sections: dict[str, Any]) -> str:
    """The documented example config with `sections` laid over its tables, as TOML text (demo, bench, tests);
    a misspelt override is still refused when the text is loaded."""
    return overlay(EXAMPLE, **sections)
