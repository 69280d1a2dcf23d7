"""The NFC transport's wire format and the phone-side applet, byte by byte (docs/nfc-transport.md)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import CardStatus, InvalidArgument, MalformedResponse
from drivers.nfc_apdu import (
    AID,
    MAX_CHUNK,
    Command,
    command_chain,
    select_command,
    split_response,
    status_meaning,
)
from drivers.nfc_applet import CardApplet
from drivers.nfc_inprocess import InProcessReader


class Echo:
    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        if ins == 0x5F:
            raise ZeroDivisionError("a bug in the phone app")
        return bytes((ins, p1, p2)) + data


def applet(selected: bool = True) -> CardApplet:
    card = CardApplet(Echo())
    if selected:
        assert card.process(select_command().encode()) == b"\x90\x00"
    return card


def test_the_aid_is_proprietary_scoexit() -> None:
    assert AID == b"\xf0SCOEXIT"
    assert select_command().encode().hex(" ") == "00 a4 04 00 08 f0 53 43 4f 45 58 49 54 00"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("80 10 01 02", Command(0x80, 0x10, 1, 2)),
        ("80 10 01 02 00", Command(0x80, 0x10, 1, 2, le=256)),
        ("80 10 01 02 03 AA BB CC", Command(0x80, 0x10, 1, 2, b"\xaa\xbb\xcc")),
        ("80 10 01 02 01 AA 10", Command(0x80, 0x10, 1, 2, b"\xaa", le=16)),
    ],
    ids=["case-1", "case-2", "case-3", "case-4"],
)
def test_the_four_short_cases(raw: str, expected: Command) -> None:
    assert Command.parse(bytes.fromhex(raw)) == expected
    assert expected.encode() == bytes.fromhex(raw)


@pytest.mark.parametrize(
    "raw", ["80 10 01", "80 10 01 02 00 AA", "80 10 01 02 05 AA BB", "80 10 01 02 01 AA 00 00"]
)
def test_malformed_commands_are_a_wrong_length(raw: str) -> None:
    with pytest.raises(CardStatus) as raised:
        Command.parse(bytes.fromhex(raw))
    assert raised.value.sw == 0x6700


@given(
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    data=st.binary(max_size=255),
    le=st.none() | st.integers(1, 256),
)
def test_encode_parse_round_trip(cla: int, ins: int, data: bytes, le: int | None) -> None:
    command = Command(cla, ins, 0x12, 0x34, data, le)
    assert Command.parse(command.encode()) == command


def test_command_chain_sets_the_chaining_bit_on_all_but_the_last() -> None:
    chain = command_chain(0x20, bytes(600), 1, 2)
    assert [(c.cla, len(c.data), c.le) for c in chain] == [
        (0x90, 255, None),
        (0x90, 255, None),
        (0x80, 90, 256),
    ]
    assert [len(c.encode()) for c in chain] == [260, 260, 96]
    assert command_chain(0x20, b"", 0, 0) == [Command(0x80, 0x20, 0, 0, b"", 256)]


@pytest.mark.parametrize(("ins", "p1"), [(0x0F, 0), (0x60, 0), (0xA4, 0), (0xC0, 0), (0x10, 256), (0x10, -1)])
def test_command_chain_refuses_what_the_transport_keeps(ins: int, p1: int) -> None:
    with pytest.raises(InvalidArgument):
        command_chain(ins, b"", p1, 0)


@pytest.mark.parametrize(
    "raw",
    ["", "90", "12 34", "60 00", "A0 00", "00" * 257 + "90 00"],
    ids=["empty", "1", "12", "60", "A0", "long"],
)
def test_split_response_refuses_garbage(raw: str) -> None:
    with pytest.raises(MalformedResponse):
        split_response(bytes.fromhex(raw))


def test_status_words_say_what_they_mean() -> None:
    assert split_response(b"ok\x61\x10") == (b"ok", 0x61, 0x10)
    assert status_meaning(0x61, 0x00) == "256 more bytes available"
    assert status_meaning(0x6A, 0x82) == "application not found"
    assert status_meaning(0x6B, 0x01) == "application-defined"
    with pytest.raises(InvalidArgument):
        CardStatus(0x9)
    with pytest.raises(InvalidArgument):
        CardStatus(0x6012)


@pytest.mark.parametrize(
    ("raw", "sw"),
    [
        ("80 10 00 00 00", "69 85"),  # before SELECT
        ("00 A4 04 00 07 A0 00 00 00 03 10 10 00", "6A 82"),  # another application
        ("00 A4 00 00 02 3F 00 00", "6A 86"),  # select by file id
        ("00 C0 00 00 00", "69 85"),  # GET RESPONSE with nothing waiting
    ],
)
def test_the_applet_before_selection(raw: str, sw: str) -> None:
    assert applet(selected=False).process(bytes.fromhex(raw)).hex(" ") == sw.lower()


@pytest.mark.parametrize(
    ("raw", "sw"),
    [
        ("00 10 00 00 00", "6e 00"),  # application INS with the interindustry class
        ("00 B0 00 00 00", "6e 00"),  # a reserved INS with the interindustry class
        ("84 10 00 00 00", "6e 00"),  # an unknown class
        ("80 A0 00 00 00", "6d 00"),  # the transport's range
        ("80 CF 00 00 00", "6d 00"),
        ("80 60 00 00 00", "6d 00"),
        ("80 10", "67 00"),
        ("80 10 00 00 05 01", "67 00"),
        ("80 5F 00 00 00", "6f 00"),  # the handler crashed
    ],
)
def test_the_applet_refuses_with_status_words(raw: str, sw: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="drivers.nfc_applet"):
        assert applet().process(bytes.fromhex(raw)).hex(" ") == sw
    assert ("card handler failed" in caplog.text) == (sw == "6f 00")


def test_the_applet_chains_and_hands_out_long_answers() -> None:
    card = applet()
    assert card.process(bytes.fromhex("90 20 01 02 02 AA BB")) == b"\x90\x00"
    assert card.process(bytes.fromhex("90 20 01 02 01 CC")) == b"\x90\x00"
    answer = card.process(bytes.fromhex("80 20 01 02 01 DD 04"))
    assert answer == bytes.fromhex("20 01 02 AA 61 03")  # 4 bytes asked for, 3 more waiting
    assert card.process(bytes.fromhex("00 C0 00 00 03")) == bytes.fromhex("BB CC DD 90 00")
    assert card.process(bytes.fromhex("00 C0 00 00 00")) == bytes.fromhex("69 85")


def test_a_chain_interrupted_by_another_command_is_refused() -> None:
    card = applet()
    assert card.process(bytes.fromhex("90 20 00 00 01 AA")) == b"\x90\x00"
    assert card.process(bytes.fromhex("80 22 00 00 01 BB 00")) == bytes.fromhex("68 83")
    assert card.process(bytes.fromhex("80 22 00 00 01 BB 00")) == bytes.fromhex("22 00 00 BB 90 00")


@pytest.mark.parametrize(
    ("interrupt", "sw"),
    [
        ("00 A4 04 00 08 F0 53 43 4F 45 58 49 54 00", "90 00"),  # SELECT: answered as one, never 68 83
        ("00 C0 00 00 00", "69 85"),  # GET RESPONSE: as outside a chain
        ("00 20 00 00 01 BB", "6e 00"),  # the interindustry class: as outside a chain
        ("80 A0 00 00 01 BB", "6d 00"),  # a reserved INS: as outside a chain
    ],
)
def test_any_command_that_is_not_the_next_chunk_drops_the_chain(interrupt: str, sw: str) -> None:
    """docs/nfc-transport.md section 5: one rule per kind of interruption, and the chain is gone after."""
    card = applet()
    assert card.process(bytes.fromhex("90 20 00 00 01 AA")) == b"\x90\x00"
    assert card.process(bytes.fromhex(interrupt)).hex(" ") == sw
    # The chain's last chunk now starts a command of its own: the AA of the dropped chunk is gone.
    assert card.process(bytes.fromhex("80 20 00 00 01 CC 00")) == bytes.fromhex("20 00 00 CC 90 00")


def test_reset_forgets_the_selection() -> None:
    card = applet()
    card.reset()
    assert card.process(bytes.fromhex("80 10 00 00 00")) == bytes.fromhex("69 85")


@settings(max_examples=60, deadline=None)
@given(sent=st.binary(max_size=3 * MAX_CHUNK + 7), p1=st.integers(0, 255))
def test_any_payload_survives_the_round_trip(sent: bytes, p1: int) -> None:
    with InProcessReader() as reader:
        reader.place(Echo())
        session = reader.wait_for_phone(1.0)
        assert session is not None
        with session:
            assert session.exchange(0x30, sent, p1=p1, p2=7) == bytes((0x30, p1, 7)) + sent
