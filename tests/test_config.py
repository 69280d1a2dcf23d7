"""The lane config loader: a good file loads, every kind of mistake is one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gate import config as lane_config
from gate.errors import ConfigError


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_example_config_loads_with_its_values(lane_config_dir: Path) -> None:
    cfg = lane_config.load(lane_config_dir / "lane.toml")
    assert cfg.lane.gate_id == "gate-01"
    assert cfg.lane.database == lane_config_dir / "gate.db"
    assert cfg.gpio.relay_pin == 17 and cfg.gpio.fail_mode == "fail-safe"
    assert [g.prefix for g in cfg.barcodes.gs1] == ["21", "22"]
    assert cfg.payments.public_key_files == [lane_config_dir / "keys" / "ps.pub"]


@pytest.mark.parametrize(
    ("old", "new", "key", "found"),
    [
        ("relay_pin = 17", 'relay_pin = "seventeen"', "gpio.relay_pin", "'seventeen'"),
        ("relay_pin = 17", "relay_pin = 40", "gpio.relay_pin", "40"),
        ("beam_pin = 22", "beam_pn = 22", "gpio.beam_pn", "22"),
        ("beam_pin = 22", "beam_pin = 17", "gpio.beam_pin", "17"),
        ('fail_mode = "fail-safe"', 'fail_mode = "open"', "gpio.fail_mode", "'open'"),
        ('currency = "EUR"', 'currency = "euro"', "lane.currency", "'euro'"),
        ("aim_prefix = true", "aim_prefix = 1", "scanner.aim_prefix", "1"),
        ("max_amount = 50000", "max_amount = -5", "offline.max_amount", "-5"),
        ('url = "http://127.0.0.1:8600"', 'url = "127.0.0.1:8600"', "payments.url", "'127.0.0.1:8600'"),
        ('public_key_files = ["keys/ps.pub"]', "public_key_files = []", "payments.public_key_files", "[]"),
        (
            'name_pattern = "ACR122|ACR1252|Virtual PCD 00 00"',
            'name_pattern = "(["',
            "reader.name_pattern",
            "'(['",
        ),
        ("value_digits = 5\n", "value_digits = 4\n", "barcodes.gs1[0]", "9"),
        ('gate_id = "gate-01"', "", "lane.gate_id", "None"),
        ('gate_id = "gate-01"', 'gate_id = "gate-01\\n"', "lane.gate_id", "'gate-01\\n'"),
        ("open_timeout_s = 8.0", "open_timeout_s = inf", "timings.open_timeout_s", "inf"),
    ],
)
def test_bad_value_is_one_line_naming_file_key_and_value(
    lane_config_dir: Path, old: str, new: str, key: str, found: str
) -> None:
    path = lane_config_dir / "lane.toml"
    _edit(path, old, new)
    with pytest.raises(ConfigError) as info:
        lane_config.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: key '{key}': found {found}, expected ")


def test_not_toml_names_the_file(lane_config_dir: Path) -> None:
    path = lane_config_dir / "lane.toml"
    path.write_text("[lane\nstore_id = 1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: not valid TOML"):
        lane_config.load(path)


def test_key_file_readable_by_others_is_refused(lane_config_dir: Path) -> None:
    key = lane_config_dir / "keys" / "gate.key"
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=r"key 'lane.gate_key_file'.*mode 0644.*chmod 600"):
        lane_config.load(lane_config_dir / "lane.toml")


def test_missing_key_file_is_refused(lane_config_dir: Path) -> None:
    (lane_config_dir / "keys" / "gate.key").unlink()
    with pytest.raises(
        ConfigError, match=r"key 'lane.gate_key_file'.*gate.key: cannot read secret key: No such"
    ):
        lane_config.load(lane_config_dir / "lane.toml")


def _with_panel_files(folder: Path, secret: bytes) -> Path:
    """The config naming a panel secret, private."""
    (folder / "keys" / "panel.key").write_bytes(secret)
    (folder / "keys" / "panel.key").chmod(0o600)
    path = folder / "lane.toml"
    _edit(path, "port = 8080", 'port = 8080\nsecret_key_file = "keys/panel.key"')
    return path


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "selfcheckout", "config", "check", str(path)], capture_output=True, text=True
    )


def test_config_check_reports_every_file_gate_run_would_refuse_at_once(lane_config_dir: Path) -> None:
    """A garbage payment-system key, an unreadable gate key and a 5-byte panel secret: all three on one
    run, each one line naming the key, and gate run refuses the same config."""
    path = _with_panel_files(lane_config_dir, b"short")
    (lane_config_dir / "keys" / "ps.pub").write_text("not a key\n")
    (lane_config_dir / "keys" / "gate.key").write_text("00" * 16 + "\n")  # 16 bytes: a cut-off seed
    done = _check(path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"Error: {path}: key 'lane.gate_key_file': {lane_config_dir}/keys/gate.key: expected 64 hex digits"
        " of secret key, found 32 characters",
        f"Error: {path}: key 'payments.public_key_files[0]': {lane_config_dir}/keys/ps.pub: expected 64 hex"
        " digits of public key, found 9 characters",
        f"Error: {path}: key 'panel.secret_key_file': {lane_config_dir}/keys/panel.key: the panel's secret"
        " key holds 5 bytes; at least 16 random bytes expected"
        " (python3 -c 'import secrets; print(secrets.token_hex(32))')",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "selfcheckout", "gate", "run", "--config", str(path), "--mock-gpio"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        lines[0] + f" (and 2 more: `selfcheckout config check {path}` lists them all)"
    ]


def test_unreadable_payment_system_key_is_refused(lane_config_dir: Path) -> None:
    (lane_config_dir / "keys" / "ps.pub").chmod(0o000)
    (lane_config_dir / "keys" / "ps.pub").rename(lane_config_dir / "keys" / "ps.pub.d")
    (lane_config_dir / "keys" / "ps.pub").mkdir()  # a folder where the key file should be
    with pytest.raises(
        ConfigError, match=r"key 'payments.public_key_files\[0\]'.*ps.pub: cannot read public"
    ):
        lane_config.load(lane_config_dir / "lane.toml")


def test_every_bad_value_is_reported_at_once(lane_config_dir: Path) -> None:
    path = lane_config_dir / "lane.toml"
    _edit(path, "beam_pin = 22", "beam_pin = -1")
    _edit(path, 'currency = "EUR"', 'currency = "euro"')
    _edit(path, "backoff_cap_ms = 60000", "backoff_cap_ms = 1")
    _edit(path, "relay_pin = 17", "relay_pn = 17")
    done = _check(path)
    assert done.returncode == 1
    assert [line.split(": key ")[1].split(":")[0] for line in done.stderr.strip().splitlines()] == [
        "'lane.currency'",
        "'gpio.relay_pn'",
        "'gpio.relay_pin'",
        "'gpio.beam_pin'",
        "'forwarder.backoff_cap_ms'",
    ]


def test_command_line_reports_one_line_and_fails(lane_config_dir: Path) -> None:
    path = lane_config_dir / "lane.toml"
    _edit(path, "beam_pin = 22", "beam_pin = -1")
    done = subprocess.run(
        [sys.executable, "-m", "selfcheckout", "config", "check", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: {path}: key 'gpio.beam_pin': found -1, expected a BCM pin number 0-27"
    ]


def test_the_scanner_section_is_optional(lane_config_dir: Path) -> None:
    path = lane_config_dir / "lane.toml"
    text = path.read_text()
    start = text.index("[scanner]")
    path.write_text(text[:start] + text[text.index("[reader]") :])
    assert lane_config.load(path).scanner is None
