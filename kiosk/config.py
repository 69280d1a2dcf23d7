"""The kiosk config: one TOML file, validated key by key the way the lane's is (gate.config).

The scanner, reader and payment-system tables are the lane's own, so a technician writes them the
same way on both Pis; the `[kiosk]`, `[screen]`, `[session]` and `[policy]` tables are the kiosk's. Every
mistake is one line naming the file and the key (gate.errors.ConfigError).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.config import (
    PaymentsSection,
    ReaderSection,
    ScannerSection,
    _currency,
    _ident,
    _non_negative,
    _positive,
    _spec,
    from_table,
    overlay,
    read_toml,
    table_rule,
)
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


def _session_problems(session: SessionSection) -> list[tuple[str, Any, str]]:
    if session.idle_clear_s <= session.idle_warning_s:
        return [
            (
                "idle_clear_s",
                session.idle_clear_s,
                f"more than session.idle_warning_s ({session.idle_warning_s})",
            )
        ]
    return []


table_rule(SessionSection, _session_problems)


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
    return from_dict(read_toml(path), source=path)


def from_dict(data: dict[str, Any], *, source: Path = Path("<memory>")) -> KioskConfig:
    return from_table(KioskConfig, data, source)


def example_with(**sections: dict[str, Any]) -> str:
    """The documented example config with `sections` laid over its tables, as TOML text (demo, bench, tests);
    a misspelt override is still refused when the text is loaded."""
    return overlay(EXAMPLE, **sections)
