"""docs/protocol.md stays in step with the code: the reason table, the examples, the instructions."""

from __future__ import annotations

import re
from pathlib import Path

from gate.barcodes import variable_measure
from gate.legality.reasons import RULES
from gate.protocol.commands import INS_CHALLENGE, INS_RECEIPT
from gate.protocol.documents import line_total
from tests.fixtures.store import LAYOUTS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()


def test_the_reason_table_lists_every_code_with_its_kind_in_order() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (deny|attendant) \|", DOC, flags=re.M)
    assert rows == [(r.code, r.kind) for r in RULES]


def test_the_app_guide_shows_the_one_text_of_every_reason_code() -> None:
    """gate/legality/reasons.py holds each code's text; the panel, the demo and the phone read it from
    there, and docs/phone-app.md's table must say the same."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "phone-app.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| ([^|]+[.!?]) \|$", guide, flags=re.M))
    assert {r.code: rows.get(r.code) for r in RULES} == {r.code: r.text for r in RULES}


def test_the_gs1_examples_are_what_the_code_computes() -> None:
    weight = variable_measure("2100231004124", LAYOUTS)
    price = variable_measure("2200457012344", LAYOUTS)
    assert weight is not None and (weight.value, weight.base_code) == (412, "2100231000003")
    assert price is not None and (price.value, price.base_code) == (1234, "2200457000006")
    assert line_total(1, 1590, 412) == 655
    assert "line_total: 655" in DOC and "2100231000003" in DOC and "2200457000006" in DOC


def test_the_nfc_instructions_are_documented() -> None:
    assert f"INS_CHALLENGE (`0x{INS_CHALLENGE:02X}`)" in DOC
    assert f"INS_RECEIPT (`0x{INS_RECEIPT:02X}`)" in DOC
    assert "nfc-transport.md" in DOC and "test-vectors.json" in DOC


def test_the_kiosk_exchange_is_documented_command_by_command_and_field_by_field() -> None:
    from gate.protocol import kiosk

    section = DOC[DOC.index("## 12. The kiosk exchange") :]
    for ins in (kiosk.INS_KIOSK_HOLD, kiosk.INS_KIOSK_PROPOSE, kiosk.INS_KIOSK_RESULT):
        assert f"| `{ins:02X}` " in section
    assert "`6A 88`" in section and kiosk.SW_NO_HOLD == 0x6A88
    for code in kiosk.REFUSALS:
        assert f"`{code}`" in section
    for doc in (kiosk.KioskHello, kiosk.ProposedList, kiosk.KioskPoll, kiosk.KioskReply):
        table = section[section.index(f"(`{doc.TYPE}`, ") :].split("\n\n")[1]
        documented = set(re.findall(r"^\| `([a-z_]+)`", table, flags=re.M))
        documented |= {"store", "currency"} if "`store`, `currency`" in table else set()
        assert documented == set(doc.FIELDS), doc.TYPE


def test_the_price_check_digit_tables_and_examples_are_what_the_code_computes() -> None:
    from gate.barcodes import _W2M, _W3, _W5M, _W5P, price_check_digit

    for weight, table in (("2-", _W2M), ("3", _W3), ("5+", _W5P), ("5-", _W5M)):
        assert f"| `{weight}` | {' '.join(map(str, table))} |" in DOC
    assert price_check_digit("0875") == "7" and price_check_digit("01234") == "1"
    layout = LAYOUTS["23"]
    assert variable_measure("2300123708752", {"23": layout}) is not None
    assert "`2300123708752`" in DOC and "check digit **7**" in DOC and "for **1**" in DOC


def test_the_limits_in_the_text_are_the_decoders() -> None:
    from gate.protocol.encoding import MAX_DEPTH, MAX_DOCUMENT_BYTES

    assert MAX_DOCUMENT_BYTES == 65_535 and "at most **65,535 bytes**" in DOC
    assert MAX_DEPTH == 8 and "below **level 8**" in DOC
