"""The technician's commands: gate keygen, gate import-catalog, gate check."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from gate.catalog import write_csv
from gate.protocol.keys import read_public_key, read_secret_key, write_public_key, write_secret_key
from gate.protocol.parties import item
from gate.store.files import init_database
from selfcheckout.cli import main
from tests.fixtures.config import EXAMPLE
from tests.fixtures.store import CATALOG, NOW, PEN, Shop


@pytest.fixture
def lane_dir(tmp_path: Path, shop: Shop) -> Path:
    """The example config with real keys: the fixture's payment-system key is the trusted one."""
    write_secret_key(tmp_path / "keys" / "gate.key", shop.keys["gate"])
    write_public_key(tmp_path / "keys" / "ps.pub", shop.keys["ps"].public_key)
    (tmp_path / "lane.toml").write_text(EXAMPLE.read_text())
    init_database(tmp_path / "gate.db")
    with (tmp_path / "catalog.csv").open("w") as f:
        write_csv(CATALOG, f)
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_keygen_writes_a_private_secret_and_a_public_key(tmp_path: Path) -> None:
    code, out = _run("gate", "keygen", str(tmp_path / "k" / "gate.key"))
    assert code == 0 and "key id" in out
    key = read_secret_key(tmp_path / "k" / "gate.key")
    assert stat.S_IMODE((tmp_path / "k" / "gate.key").stat().st_mode) == 0o600
    assert read_public_key(tmp_path / "k" / "gate.key.pub") == key.public_key
    code, out = _run("gate", "keygen", str(tmp_path / "k" / "gate.key"))
    assert code == 1 and "--force" in out
    assert _run("gate", "keygen", "--force", str(tmp_path / "k" / "gate.key"))[0] == 0
    assert read_secret_key(tmp_path / "k" / "gate.key").public_key != key.public_key


def test_import_catalog_then_check_a_presentation(lane_dir: Path, shop: Shop) -> None:
    config = str(lane_dir / "lane.toml")
    (lane_dir / "gate.db").unlink()
    code, out = _run("gate", "import-catalog", str(lane_dir / "catalog.csv"), "--config", config)
    assert code == 1 and "no gate database here: run `selfcheckout gate init" in out
    code, out = _run("gate", "init", "--config", config)
    assert code == 0 and out.startswith(f"made {lane_dir / 'gate.db'}: instance "), out
    code, out = _run("gate", "import-catalog", str(lane_dir / "catalog.csv"), "--config", config)
    assert code == 0, out
    assert f"{len(CATALOG)} rows: 10 new products" in out

    raw, challenge = shop.present()
    (lane_dir / "p.cbor").write_bytes(raw)
    (lane_dir / "c.cbor").write_bytes(challenge.encode())
    args = ["gate", "check", str(lane_dir / "p.cbor"), "--config", config, "--now", str(NOW)]
    code, out = _run(*args, "--challenge", str(lane_dir / "c.cbor"))
    assert code == 0 and out.startswith("verdict: pass") and "decode" in out and " ms" in out

    code, out = _run(*args, "--challenge", str(lane_dir / "c.cbor"), "--json")
    decision = json.loads(out)
    assert decision["verdict"] == "pass" and decision["challenge_assumed"] is False
    assert set(decision["timings_ms"]) >= {"decode", "voucher_signature", "catalog", "state", "total"}


def test_check_reports_every_reason_and_exits_by_verdict(lane_dir: Path, shop: Shop) -> None:
    config = str(lane_dir / "lane.toml")
    _run("gate", "import-catalog", str(lane_dir / "catalog.csv"), "--config", config)
    raw, _ = shop.present([item(PEN, 1)], voucher=shop.voucher(key=shop.keys["mallory"]))
    (lane_dir / "p.hex").write_text(raw.hex() + "\n")  # hex text works as well as CBOR
    code, out = _run("gate", "check", str(lane_dir / "p.hex"), "--config", config, "--now", str(NOW))
    assert code == 3
    assert "voucher_signature [deny]" in out and "price_mismatch [deny]" in out
    assert "no --challenge" in out


def test_check_a_malformed_file_and_a_missing_one(lane_dir: Path) -> None:
    config = str(lane_dir / "lane.toml")
    (lane_dir / "junk").write_bytes(b"\x00\x01")
    code, out = _run("gate", "check", str(lane_dir / "junk"), "--config", config)
    assert code == 3 and "malformed" in out
    code, out = _run("gate", "check", str(lane_dir / "none"), "--config", config)
    assert code == 1 and out.startswith("Error:") and len(out.strip().splitlines()) == 1


def test_a_bad_catalog_is_one_line_and_imports_nothing(lane_dir: Path) -> None:
    config = str(lane_dir / "lane.toml")
    (lane_dir / "bad.csv").write_text(
        "code,name,category,unit,price,currency\n4006381333931,Pen,,each,129,EUR\n4006381333932,X,,each,1,EUR\n"
    )
    code, out = _run("gate", "import-catalog", str(lane_dir / "bad.csv"), "--config", config)
    assert code == 1 and "bad.csv:3: code" in out
    from gate.store import GateStore

    with GateStore(lane_dir / "gate.db") as store:
        assert store.catalog_counts() == (0, 0)


@pytest.mark.parametrize("command", ["check", "import-catalog", "keygen"])
def test_every_command_has_help(command: str) -> None:
    code, out = _run("gate", command, "--help")
    assert code == 0 and "Usage:" in out and len(out) > 200
