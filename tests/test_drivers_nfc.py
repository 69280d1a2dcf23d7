"""The phone link's behaviour, the same through pcscd + vpcd + the virtual card and through the in-process
reader: SELECT, exchanges short and chunked both ways, a phone lifted mid-exchange, timeouts, garbage."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from drivers.errors import (
    ApduStatusError,
    CardStatus,
    DeviceClosed,
    ExchangeTimeout,
    InvalidArgument,
    MalformedResponse,
    PhoneLost,
)
from drivers.nfc_apdu import INS_SELECT, SW_INS_NOT_SUPPORTED
from drivers.nfc_applet import CardApplet
from drivers.nfc_inprocess import InProcessReader
from drivers.nfc_pcsc import PhoneReader
from drivers.nfc_session import PhoneSession
from drivers.virtual_card import VirtualCard

INS_ECHO = 0x10
INS_NAME = 0x12
INS_SIZED = 0x14  # answer with as many bytes as the first two bytes sent say (big-endian)
INS_SLOW = 0x16
INS_LIFT = 0x18  # the phone leaves while answering
INS_REFUSE = 0x1A
TIMEOUT_MS = 300


def pattern(size: int) -> bytes:
    return bytes(i * 7 % 251 for i in range(size))


class Phone:
    """A test phone: echoes, names itself, answers big, answers late, leaves mid-answer, refuses."""

    def __init__(self, name: str = "phone") -> None:
        self.name = name
        self.received: list[tuple[int, int, int, bytes]] = []
        self.lift: Callable[[], None] = lambda: None

    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        self.received.append((ins, p1, p2, data))
        if ins == INS_ECHO:
            return data
        if ins == INS_NAME:
            return self.name.encode()
        if ins == INS_SIZED:
            return pattern(int.from_bytes(data[:2], "big"))
        if ins == INS_SLOW:
            time.sleep(TIMEOUT_MS / 1000 * 2.5)
            return b"late"
        if ins == INS_LIFT:
            self.lift()
            return b"never delivered"
        if ins == INS_REFUSE:
            raise CardStatus(0x6985, "not now")
        raise CardStatus(SW_INS_NOT_SUPPORTED)


class GarbageApplet(CardApplet):
    """Selects like our phone, then answers application commands with the bytes it is told."""

    def __init__(self, answer: bytes) -> None:
        super().__init__(Phone())
        self.answer = answer

    def process(self, apdu: bytes) -> bytes:
        if apdu[1] == INS_SELECT:
            return super().process(apdu)
        return self.answer


class Tap:
    """A reader and a hand that places phones on it and lifts them, for either transport."""

    def __init__(
        self,
        reader: PhoneReader | InProcessReader,
        place: Callable[[Phone | CardApplet], None],
        lift: Callable[[], None],
    ) -> None:
        self.reader = reader
        self._place = place
        self.lift = lift

    def place(self, phone: Phone | CardApplet) -> None:
        if isinstance(phone, Phone):
            phone.lift = self.lift
        self._place(phone)

    def session(self, phone: Phone | CardApplet | None = None, timeout_s: float = 5.0) -> PhoneSession:
        self.place(phone or Phone())
        session = self.reader.wait_for_phone(timeout_s)
        assert session is not None, self.reader.health()
        return session


@pytest.fixture(params=["pcsc", "in-process"])
def tap(request: pytest.FixtureRequest) -> Iterator[Tap]:
    if request.param == "in-process":
        with InProcessReader(exchange_timeout_ms=TIMEOUT_MS) as reader:
            yield Tap(reader, reader.place, reader.lift)
        return
    make_card: Callable[[Phone | CardApplet], VirtualCard] = request.getfixturevalue("virtual_phone")
    cards: list[VirtualCard] = []

    def place(phone: Phone | CardApplet) -> None:
        cards.append(make_card(phone))
        cards[-1].insert()

    def lift() -> None:
        if cards:
            cards[-1].remove()

    with PhoneReader("^Virtual PCD 00 00$", exchange_timeout_ms=TIMEOUT_MS) as reader:
        yield Tap(reader, place, lift)


def test_select_and_short_exchange(tap: Tap) -> None:
    phone = Phone()
    with tap.session(phone) as session:
        assert session.exchange(INS_ECHO, b"hello", p1=1, p2=2) == b"hello"
    assert phone.received == [(INS_ECHO, 1, 2, b"hello")]
    health = tap.reader.health()
    assert health["connected"] is True
    assert (health["sessions"], health["exchanges"], health["apdus"]) == (1, 1, 2)  # SELECT + command


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 2048])
def test_chunked_both_ways_byte_exact(tap: Tap, size: int) -> None:
    phone = Phone()
    sent = os.urandom(size)
    with tap.session(phone) as session:
        assert session.exchange(INS_ECHO, sent) == sent
    assert phone.received == [(INS_ECHO, 0, 0, sent)]  # reassembled into one command on the phone
    commands = max(1, -(-size // 255))
    get_responses = max(0, -(-size // 256) - 1)
    assert tap.reader.health()["apdus"] == 1 + commands + get_responses


def test_2k_command_and_2k_answer(tap: Tap) -> None:
    with tap.session() as session:
        assert session.exchange(INS_SIZED, (2048).to_bytes(2, "big") + bytes(2046)) == pattern(2048)
        assert session.exchange(INS_ECHO, pattern(2048)) == pattern(2048)


def test_phone_lifted_mid_exchange_then_next_phone_served(tap: Tap) -> None:
    with tap.session() as session:
        started = time.monotonic()
        with pytest.raises(PhoneLost):
            session.exchange(INS_LIFT, b"x" * 600)
        assert time.monotonic() - started < TIMEOUT_MS / 1000
        with pytest.raises(PhoneLost):  # the session is over
            session.exchange(INS_ECHO, b"again")
    assert tap.reader.health()["phones_lost"] >= 1
    with tap.session(Phone("next")) as session:
        assert session.exchange(INS_NAME) == b"next"


def test_unknown_ins_is_a_status_error_and_the_session_goes_on(tap: Tap) -> None:
    with tap.session() as session:
        with pytest.raises(ApduStatusError) as raised:
            session.exchange(0x5E)
        assert (raised.value.sw1, raised.value.sw2) == (0x6D, 0x00)
        assert "6D 00" in str(raised.value)
        with pytest.raises(ApduStatusError, match="69 85") as refused:
            session.exchange(INS_REFUSE, b"data" * 100)
        assert refused.value.sw == 0x6985
        assert session.exchange(INS_ECHO, b"still here") == b"still here"
    assert tap.reader.health()["status_errors"] == 2


@pytest.mark.parametrize(
    "answer",
    [b"\x90", b"\x12\x34", b"\x60\x00", b"\x61\x00", bytes(300) + b"\x90\x00"],
    ids=["one-byte", "not-a-status-word", "sw1-60", "more-data-forever", "over-long"],
)
def test_garbage_answers_are_typed_errors(tap: Tap, answer: bytes) -> None:
    with tap.session(GarbageApplet(answer)) as session, pytest.raises(MalformedResponse):
        session.exchange(INS_ECHO, b"ping")
    assert tap.reader.health()["malformed"] == 1


def test_a_silent_phone_times_out_without_hanging(tap: Tap) -> None:
    with tap.session() as session:
        started = time.monotonic()
        with pytest.raises(ExchangeTimeout):
            session.exchange(INS_SLOW)
        assert TIMEOUT_MS / 1000 <= time.monotonic() - started < TIMEOUT_MS / 1000 + 0.2
        with pytest.raises(ExchangeTimeout):
            session.exchange(INS_ECHO)
    tap.lift()
    assert tap.reader.health()["timeouts"] >= 1
    with tap.session(Phone("after")) as session:
        assert session.exchange(INS_NAME) == b"after"


def test_one_session_per_tap_and_wait_removed(tap: Tap) -> None:
    with tap.session() as session:
        session.exchange(INS_ECHO, b"1")
        assert session.wait_removed(0.3) is False
    assert tap.reader.wait_for_phone(0.5) is None  # the same phone is still there: not a new tap
    tap.lift()
    assert session.wait_removed(3.0) is True
    with tap.session(Phone("second")) as second:
        assert second.exchange(INS_NAME) == b"second"


def test_a_card_without_our_application_is_not_a_phone(tap: Tap) -> None:
    tap.place(CardApplet(Phone(), aid=bytes.fromhex("A0000000031010")))
    assert tap.reader.wait_for_phone(1.0) is None
    health = tap.reader.health()
    assert health["not_our_phone"] == 1
    assert "6A 82" in health["last_error"]


def test_bad_arguments_and_use_after_close(tap: Tap) -> None:
    session = tap.session()
    with pytest.raises(InvalidArgument):
        session.exchange(0xA4)  # the transport's INS range
    with pytest.raises(InvalidArgument):
        session.exchange(INS_ECHO, bytes(65536))
    session.close()
    session.close()
    with pytest.raises(DeviceClosed):
        session.exchange(INS_ECHO)
    tap.reader.close()
    tap.reader.close()
    with pytest.raises(DeviceClosed):
        tap.reader.wait_for_phone(0.1)
