"""`make demo` runs in the suite: the scripted store's timeline and its summary, as a person reads them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_runs_every_scenario_and_its_summary_balances(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "selfcheckout", "demo", "--state", str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert done.stderr == ""
    verdicts = re.findall(r"gate +(\w+)'s phone: (\w+)(?:: ([a-z_]+(?:, [a-z_]+)*))?", out)
    assert [
        (who, verdict, set(codes.split(", ")) if codes else set()) for who, verdict, codes in verdicts
    ] == [
        ("alice", "PASS", set()),
        ("mallory", "DENY", {"list_signature", "price_mismatch"}),
        ("bob", "DENY", {"over_guarantee"}),
        ("carol", "PASS", set()),
        ("dave", "PASS", set()),
        ("erin", "EMERGENCY", set()),
    ]
    assert re.search(r"replayed presentation: DENY: .*answer_wrong_nonce", out)
    assert "bob       phone refuses to sign: the total 5.67 EUR is over the hold of 5.00 EUR" in out
    assert re.search(r"2 charge\(s\) waiting in the outbox \(6\.86 EUR\)", out)
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
    assert rows["passes at the gate"] == ("3", "18.38 EUR")
    assert rows["charges at the payment system"] == ("3", "18.38 EUR")
    assert rows["charges settled"] == ("3", "18.38 EUR")
    assert rows["unforwarded at the gate"][0] == "0"
    assert summary.rstrip().endswith("balanced                       yes")
    assert (tmp_path / "store" / "gate.db").exists() and (tmp_path / "store" / "payments.db").exists()
