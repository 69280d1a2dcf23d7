"""docs/nfc-transport.md stays true: its example runs, and its worked hex example is what the code sends."""

from __future__ import annotations

import re
from pathlib import Path

from drivers.nfc_apdu import AID, APP_INS, command_chain, get_response_command, select_command
from drivers.nfc_applet import CardApplet

DOC = (Path(__file__).resolve().parents[1] / "docs" / "nfc-transport.md").read_text()


def hexs(data: bytes) -> str:
    return data.hex(" ").upper()


def test_the_python_example_runs() -> None:
    (example,) = re.findall(r"```python\n(.*?)```", DOC, re.S)
    exec(compile(example, "docs/nfc-transport.md", "exec"), {})


def test_the_aid_and_ranges_are_the_codes() -> None:
    assert hexs(AID) in DOC
    assert f"application commands `{APP_INS.start:X}`-`{APP_INS.stop - 1:X}`" in DOC


def test_the_worked_example_is_what_both_sides_send() -> None:
    class Counting:
        def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
            return bytes(range(256)) + bytes(range(44))

    phone = CardApplet(Counting())
    select = select_command().encode()
    assert f">> {hexs(select)}" in DOC
    assert phone.process(select) == b"\x90\x00"
    first, last = (c.encode() for c in command_chain(0x10, bytes(300), 0, 0))
    assert f">> {hexs(first[:5])} <255 bytes>" in DOC
    assert f">> {hexs(last[:5])} <45 bytes> {hexs(last[-1:])}" in DOC
    assert phone.process(first) == b"\x90\x00"
    answer = phone.process(last)
    assert f"<< 00 01 02 ... FE FF {hexs(answer[-2:])}" in DOC
    fetch = get_response_command(answer[-1]).encode()
    assert f">> {hexs(fetch)}" in DOC
    assert f"<< 00 01 02 ... 2A 2B {hexs(phone.process(fetch)[-2:])}" in DOC
