"""The technicians' PIN comes from [panel] pin_file: private, digits only, or the lane does not start."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate import config as lane_config
from gate.panel import pin_for
from gate.panel.forms import PanelError


def _with_pin(lane_config_dir: Path, pin: str, mode: int = 0o600) -> Path:
    pin_file = lane_config_dir / "keys" / "panel.pin"
    pin_file.write_text(pin + "\n")
    pin_file.chmod(mode)
    path = lane_config_dir / "lane.toml"
    path.write_text(path.read_text().replace("port = 8080", 'port = 8080\npin_file = "keys/panel.pin"'))
    return path


def test_pin_file_gives_the_pin(lane_config_dir: Path) -> None:
    cfg = lane_config.load(_with_pin(lane_config_dir, "482913"))
    assert pin_for(cfg.panel) == "482913"


def test_no_pin_file_means_no_pin(lane_config_dir: Path) -> None:
    cfg = lane_config.load(lane_config_dir / "lane.toml")
    assert pin_for(cfg.panel) is None


@pytest.mark.parametrize("pin", ["123", "12ab56", "1" * 33, ""])
def test_a_pin_that_is_not_4_to_32_digits_is_refused(lane_config_dir: Path, pin: str) -> None:
    path = _with_pin(lane_config_dir, pin)
    with pytest.raises(
        lane_config.ConfigError, match=r"panel\.pin: the technicians' PIN must be 4-32 digits$"
    ):
        lane_config.load(path)
    cfg = lane_config.load(path, check_key_files=False)
    with pytest.raises(PanelError, match=r"panel\.pin: the technicians' PIN must be 4-32 digits$"):
        pin_for(cfg.panel)


def test_a_pin_file_others_can_read_is_refused(lane_config_dir: Path) -> None:
    path = _with_pin(lane_config_dir, "482913", mode=0o644)
    with pytest.raises(lane_config.ConfigError, match=r"key 'panel.pin_file'.*mode 0644.*chmod 600"):
        lane_config.load(path)
