"""What only the PC/SC reader does: survive pcscd killed with -9 and started again, pick its reader by
name, wait for a reader that is not there, and never trip over a card pcscd has not yet seen leave."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from drivers.errors import DeviceUnavailable, InvalidArgument, PhoneLost
from drivers.nfc_pcsc import PhoneReader
from drivers.virtual_card import VPCD_PORT, VirtualCard
from tests.fixtures.standins import Pcscd
from tests.test_drivers_nfc import INS_ECHO, INS_NAME, Phone

FIRST = "^Virtual PCD 00 00$"
MakeCard = Callable[..., VirtualCard]


def name_of_next_phone(reader: PhoneReader, timeout_s: float = 5.0) -> bytes:
    session = reader.wait_for_phone(timeout_s)
    assert session is not None, reader.health()
    with session:
        return session.exchange(INS_NAME)


def test_pcscd_killed_mid_session_and_restarted(pcsc: Pcscd, virtual_phone: MakeCard) -> None:
    with PhoneReader(FIRST, reestablish_max_s=0.2) as reader:
        virtual_phone(Phone("before")).insert()
        with reader.wait_for_phone(5.0) as session:
            assert session.exchange(INS_NAME) == b"before"
            pcsc.kill()
            with pytest.raises(PhoneLost):
                session.exchange(INS_ECHO, b"x")
        assert reader.wait_for_phone(0.5) is None
        health = reader.health()
        assert health["connected"] is False
        assert "0x8010001D" in health["last_error"]  # service not available, said with its own code
        pcsc.start()
        virtual_phone(Phone("after")).insert()
        assert name_of_next_phone(reader) == b"after"
        assert reader.health()["contexts_established"] == 2


def test_a_waiting_reader_rides_through_a_pcscd_restart(pcsc: Pcscd, virtual_phone: MakeCard) -> None:
    names: list[bytes] = []
    with PhoneReader(FIRST, reestablish_max_s=0.2) as reader:
        assert reader.wait_for_phone(0.2) is None  # the context is up
        # The wait runs on a helper thread: pcscd must be started from the main one (Pcscd's docstring).
        waiter = threading.Thread(target=lambda: names.append(name_of_next_phone(reader, 8.0)))
        waiter.start()
        time.sleep(0.3)
        pcsc.restart()
        virtual_phone(Phone("after restart")).insert()
        waiter.join()
        assert names == [b"after restart"]
        assert reader.health()["contexts_established"] == 2


def test_a_phone_lifted_and_the_next_placed_at_once(pcsc: Pcscd, virtual_phone: MakeCard) -> None:
    with PhoneReader(FIRST) as reader:
        first = virtual_phone(Phone("first"))
        first.insert()
        assert name_of_next_phone(reader) == b"first"
        first.remove()
        virtual_phone(Phone("second")).insert()  # before pcscd's next poll sees the reader empty
        assert name_of_next_phone(reader) == b"second"


def test_the_name_pattern_picks_the_reader(pcsc: Pcscd, virtual_phone: MakeCard) -> None:
    with PhoneReader("PCD 00 01$") as reader:
        virtual_phone(Phone("on the first reader"), port=VPCD_PORT).insert()
        assert reader.wait_for_phone(0.8) is None
        virtual_phone(Phone("on the second reader"), port=VPCD_PORT + 1).insert()
        assert name_of_next_phone(reader) == b"on the second reader"
        assert reader.health()["reader"] == "Virtual PCD 00 01"


def test_no_reader_matches(pcsc: Pcscd) -> None:
    with PhoneReader("^ACR122U$") as reader:
        started = time.monotonic()
        assert reader.wait_for_phone(0.3) is None
        assert time.monotonic() - started < 1.0
        health = reader.health()
        assert (health["connected"], health["reader"]) == (False, None)
        assert "'^ACR122U$'" in health["last_error"]


def test_close_from_another_thread_ends_a_wait(pcsc: Pcscd) -> None:
    reader = PhoneReader(FIRST)
    threading.Timer(0.2, reader.close).start()
    started = time.monotonic()
    assert reader.wait_for_phone(5.0) is None
    assert time.monotonic() - started < 1.0


def test_bad_settings() -> None:
    with pytest.raises(InvalidArgument, match="pattern"):
        PhoneReader("Virtual PCD (")
    with pytest.raises(InvalidArgument):
        PhoneReader(FIRST, exchange_timeout_ms=0)


def test_a_virtual_card_needs_vpcd(pcsc: Pcscd) -> None:
    pcsc.kill()
    card = VirtualCard(Phone())
    with pytest.raises(DeviceUnavailable, match="vpcd"):
        card.insert(timeout_s=0.2)
    assert not card.inserted
