"""`make demo` runs in the suite: the scripted store's timeline and its summary, as a person reads them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def demo(folder: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "selfcheckout", "demo", "--state", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    return done.stdout


def verdicts(out: str) -> list[tuple[str, str, str, set[str]]]:
    """(gate, whose phone, verdict, reasons) of every tap, in order."""
    found = re.findall(r"(gate-0\d) +([\w-]+)'s phone: (\w+)(?:: ([a-z_]+(?:, [a-z_]+)*))?", out)
    return [
        (gate, who, verdict, set(codes.split(", ")) if codes else set())
        for gate, who, verdict, codes in found
    ]


def test_demo_runs_every_scenario_and_its_summary_balances(tmp_path: Path) -> None:
    out = demo(tmp_path / "store")
    assert "nats-server (JetStream) at nats://127.0.0.1:" in out
    assert verdicts(out) == [
        ("gate-01", "alice", "PASS", set()),
        ("gate-01", "mallory", "DENY", {"list_signature", "price_mismatch"}),
        ("gate-01", "bob", "DENY", {"over_guarantee"}),
        ("gate-01", "carol", "PASS", set()),
        ("gate-02", "dave", "PASS", set()),
        ("gate-01", "frank", "PASS", set()),
        ("gate-02", "frank-clone", "DENY", {"list_used"}),  # the payment system is down meanwhile
        ("gate-01", "erin", "EMERGENCY", set()),
    ]
    assert re.search(r"replayed presentation: DENY: .*answer_wrong_nonce", out)
    assert "bob       phone refuses to sign: the total 5.67 EUR is over the hold of 5.00 EUR" in out
    assert re.search(r"3 charge\(s\) waiting in the lanes' outboxes \(10\.04 EUR\)", out)
    notices = re.findall(
        r"(\w+) +deduction notice verified: ([\d.]+) EUR = ([\d.]+) EUR stored value \+ ([\d.]+) EUR bank",
        out,
    )
    assert [n[0] for n in notices] == ["alice", "carol", "dave"]
    for _, total, stored, bank in notices:
        assert round(float(stored) * 100) + round(float(bank) * 100) == round(float(total) * 100)
    summary = out[out.index("== Summary") :]
    rows = {
        m[0].strip(): m[1:] for m in re.findall(r"^  (.+?)\s{2,}(\d*)\s+([\d.]+ EUR|yes|NO)?$", summary, re.M)
    }
    assert rows["passes at the gates"] == ("4", "21.56 EUR")
    assert rows["charges at the payment system"] == ("4", "21.56 EUR")
    assert rows["charges settled"] == ("4", "21.56 EUR")
    assert rows["unforwarded at the gates"][0] == "0"
    assert summary.rstrip().endswith("balanced                       yes")
    store = tmp_path / "store"
    assert (store / "gate-01" / "gate.db").exists() and (store / "gate-02" / "gate.db").exists()
    assert (store / "payments.db").exists()


def test_without_nats_server_the_demo_says_so_and_the_lanes_share_passes_in_process(tmp_path: Path) -> None:
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "nats-server").exists()]
    out = demo(tmp_path / "store", {**os.environ, "PATH": os.pathsep.join(path)})
    assert "nats-server is not installed" in out and "in-process bus instead" in out
    assert ("gate-02", "frank-clone", "DENY", {"list_used"}) in verdicts(out)
    assert out.rstrip().endswith("balanced                       yes")
