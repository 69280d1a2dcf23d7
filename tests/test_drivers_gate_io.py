"""Gate I/O through gpiozero's MockFactory: whole pin state sequences, both relay polarities and both
fail modes, the fire alarm, faults for a forced door and a stuck beam, debounce."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from drivers.errors import DeviceClosed, DeviceUnavailable, InvalidArgument
from drivers.gate_io import BuzzerPattern, GateEventKind, GateIO
from gate.config import GpioSection

PINS = {
    "relay_pin": 17,
    "door_sensor_pin": 27,
    "beam_pin": 22,
    "green_pin": 23,
    "red_pin": 24,
    "buzzer_pin": 25,
    "fire_alarm_pin": 5,
    "exit_button_pin": 6,
}
E = GateEventKind


def states(pin: MockPin) -> list[bool]:
    """Every state the pin went through; gpiozero's assert_states would pass a shorter expected list."""
    return [bool(s.state) for s in pin.states]


def events(gate: GateIO, count: int, timeout_s: float = 1.0) -> list[GateEventKind]:
    out = [gate.events.get(timeout=timeout_s).kind for _ in range(count)]
    with pytest.raises(queue.Empty):  # and nothing more
        gate.events.get(timeout=0.05)
    return out


@pytest.fixture
def make_gate(mock_factory: MockFactory) -> Iterator[Callable[..., GateIO]]:
    gates: list[GateIO] = []

    def make(**settings: object) -> GateIO:
        gate = GateIO(**{**PINS, "debounce_ms": 0, **settings}, pin_factory=mock_factory)
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        gate.close()


# (fail_mode, relay_active_high) -> relay pin states after: construction, release, secure, close.
RELAY_SEQUENCES = {
    ("fail-safe", True): ([0, 1], [0, 1, 0], [0, 1, 0, 1], [0, 1, 0, 1, 0]),
    ("fail-safe", False): ([0], [0, 1], [0, 1, 0], [0, 1, 0, 1]),
    ("fail-secure", True): ([0], [0, 1], [0, 1, 0], [0, 1, 0]),
    # The leading 0 is the mock input's level before the pin became an output at high (not energized).
    ("fail-secure", False): ([0, 1], [0, 1, 0], [0, 1, 0, 1], [0, 1, 0, 1]),
}


@pytest.mark.parametrize(("fail_mode", "active_high"), list(RELAY_SEQUENCES))
def test_relay_sequences_for_each_wiring(
    make_gate: Callable[..., GateIO], mock_factory: MockFactory, fail_mode: str, active_high: bool
) -> None:
    built, released, secured, closed = (list(map(bool, s)) for s in RELAY_SEQUENCES[fail_mode, active_high])
    gate = make_gate(fail_mode=fail_mode, relay_active_high=active_high)
    relay = mock_factory.pin(17)
    assert gate.locked is True
    assert states(relay) == built
    gate.release()
    assert (gate.locked, states(relay)) == (False, released)
    assert gate.secure() is True
    assert (gate.locked, states(relay)) == (True, secured)
    gate.close()
    assert states(relay) == closed
    assert relay.function == "input"


def test_the_config_section_passes_through(mock_factory: MockFactory) -> None:
    section = GpioSection(**PINS)
    with GateIO(**asdict(section), door_fault_ms=1500, pin_factory=mock_factory) as gate:
        assert gate.health()["locked"] is True


def test_starts_locked_dark_and_silent(make_gate: Callable[..., GateIO], mock_factory: MockFactory) -> None:
    gate = make_gate()
    for pin in (23, 24, 25):
        assert states(mock_factory.pin(pin)) == [False]
    assert gate.health() == {
        "connected": True,
        "fail_mode": "fail-safe",
        "locked": True,
        "holds": [],
        "door_open": False,
        "beam_blocked": False,
        "fire_alarm": False,
        "faults": [],
        "passages": 0,
        "forced_door_faults": 0,
        "beam_stuck_faults": 0,
        "last_error": None,
    }


@pytest.mark.parametrize("when_high", [True, False])
def test_fire_alarm_opens_and_holds_until_over_and_secured(
    make_gate: Callable[..., GateIO], mock_factory: MockFactory, when_high: bool
) -> None:
    fire = mock_factory.pin(5)
    quiet, alarm = (fire.drive_low, fire.drive_high) if when_high else (fire.drive_high, fire.drive_low)
    quiet()
    gate = make_gate(fire_alarm_when_high=when_high)
    relay = mock_factory.pin(17)
    alarm()
    assert events(gate, 1) == [E.FIRE_ALARM_ON]
    assert gate.locked is False
    assert gate.secure() is False  # refused while the alarm lasts
    quiet()
    assert events(gate, 1) == [E.FIRE_ALARM_OFF]
    assert gate.locked is False  # stays open until the lane secures it
    assert gate.secure() is True
    assert states(relay) == [False, True, False, True]


def test_fire_alarm_active_at_start_opens_at_once(
    make_gate: Callable[..., GateIO], mock_factory: MockFactory
) -> None:
    mock_factory.pin(5).drive_high()
    gate = make_gate()
    assert gate.locked is False
    assert gate.health()["holds"] == ["fire-alarm"]
    assert states(mock_factory.pin(17)) == [False, True, False]


def test_forced_door_is_a_fault_after_door_fault_ms(
    make_gate: Callable[..., GateIO], mock_factory: MockFactory
) -> None:
    gate = make_gate(door_fault_ms=100)
    door = mock_factory.pin(27)
    door.drive_high()
    door.drive_low()  # opened and closed again quickly: no fault
    assert events(gate, 2) == [E.DOOR_OPENED, E.DOOR_CLOSED]
    door.drive_high()
    assert events(gate, 2, timeout_s=0.5) == [E.DOOR_OPENED, E.FORCED_DOOR]
    health = gate.health()
    assert (health["faults"], health["forced_door_faults"]) == (["forced-door"], 1)
    assert "door open" in health["last_error"]
    door.drive_low()
    assert events(gate, 1) == [E.DOOR_CLOSED]
    assert gate.health()["faults"] == []


def test_door_opened_after_release_is_no_fault(
    make_gate: Callable[..., GateIO], mock_factory: MockFactory
) -> None:
    gate = make_gate(door_fault_ms=50)
    door = mock_factory.pin(27)
    gate.release()
    door.drive_high()
    gate.secure()  # closing behind a slow walker: the door moved while released
    time.sleep(0.15)
    door.drive_low()
    assert events(gate, 2) == [E.DOOR_OPENED, E.DOOR_CLOSED]
    assert gate.health()["forced_door_faults"] == 0


def test_beam_counts_passages_and_a_stuck_beam_is_a_fault(
    make_gate: Callable[..., GateIO], mock_factory: MockFactory
) -> None:
    gate = make_gate(beam_blocked_fault_s=0.1)
    beam = mock_factory.pin(22)
    for _ in range(3):
        beam.drive_high()
        beam.drive_low()
    assert events(gate, 6) == [E.BEAM_BLOCKED, E.BEAM_CLEARED] * 3
    beam.drive_high()
    assert events(gate, 2, timeout_s=0.5) == [E.BEAM_BLOCKED, E.BEAM_STUCK]
    assert gate.health()["faults"] == ["beam-stuck"]
    beam.drive_low()
    assert events(gate, 1) == [E.BEAM_CLEARED]
    health = gate.health()
    assert (health["passages"], health["beam_stuck_faults"], health["faults"]) == (4, 1, [])


def test_inverted_sensors(make_gate: Callable[..., GateIO], mock_factory: MockFactory) -> None:
    door, beam = mock_factory.pin(27), mock_factory.pin(22)
    door.drive_high()
    beam.drive_high()
    gate = make_gate(door_open_when_high=False, beam_blocked_when_high=False)
    assert (gate.health()["door_open"], gate.health()["beam_blocked"]) == (False, False)
    beam.drive_low()
    door.drive_low()
    assert events(gate, 2) == [E.BEAM_BLOCKED, E.DOOR_OPENED]


def test_debounce_reports_a_level_only_once_it_holds(
    make_gate: Callable[..., GateIO], mock_factory: MockFactory
) -> None:
    gate = make_gate(debounce_ms=40)
    beam = mock_factory.pin(22)
    beam.drive_high()  # a 5 ms glitch
    time.sleep(0.005)
    beam.drive_low()
    time.sleep(0.1)
    with pytest.raises(queue.Empty):
        gate.events.get_nowait()
    for level in (True, False, True, False, True):  # contact bounce, ending blocked
        (beam.drive_high if level else beam.drive_low)()
        time.sleep(0.005)
    started = time.monotonic()
    assert events(gate, 1) == [E.BEAM_BLOCKED]
    assert time.monotonic() - started >= 0.02


def test_exit_button_reports_presses(make_gate: Callable[..., GateIO], mock_factory: MockFactory) -> None:
    gate = make_gate()
    button = mock_factory.pin(6)
    assert states(button) == [False, True]  # pulled up (released) when the button was set up
    button.drive_low()
    button.drive_high()
    assert events(gate, 1) == [E.EXIT_BUTTON]


def test_exit_button_is_optional(make_gate: Callable[..., GateIO], mock_factory: MockFactory) -> None:
    make_gate(exit_button_pin=None)
    assert mock_factory.pin(6).function == "input"
    assert states(mock_factory.pin(6)) == [False]


def test_lights(make_gate: Callable[..., GateIO], mock_factory: MockFactory) -> None:
    gate = make_gate()
    green, red = mock_factory.pin(23), mock_factory.pin(24)
    gate.lights(green=True)
    gate.lights(red=True)
    gate.lights()
    assert (states(green), states(red)) == ([False, True, False], [False, True, False])
    gate.lights(red=True, blink=True)
    time.sleep(0.35)  # on for 0.25 s, then off
    gate.lights()
    assert states(red)[3:] == [True, False]
    assert states(green) == [False, True, False]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (BuzzerPattern.ACCEPT, [False, True, False]),
        (BuzzerPattern.DENY, [False, True, False, True, False, True, False]),
    ],
)
def test_buzzer_patterns_play_in_the_background(
    make_gate: Callable[..., GateIO], mock_factory: MockFactory, pattern: BuzzerPattern, expected: list[bool]
) -> None:
    gate = make_gate()
    started = time.monotonic()
    gate.buzz(pattern)
    assert time.monotonic() - started < 0.05
    on_s, off_s, repeats = pattern.value
    time.sleep((on_s + off_s) * repeats + 0.1)
    assert states(mock_factory.pin(25)) == expected


def test_a_fault_pattern_sounds_until_silenced(
    make_gate: Callable[..., GateIO], mock_factory: MockFactory
) -> None:
    gate = make_gate()
    gate.buzz(BuzzerPattern.FAULT)
    time.sleep(0.1)
    gate.silence()
    assert states(mock_factory.pin(25)) == [False, True, False]


def test_hold_open(make_gate: Callable[..., GateIO], mock_factory: MockFactory) -> None:
    gate = make_gate()
    gate.hold_open()
    assert gate.secure() is False
    assert gate.health()["holds"] == ["hold-open"]
    gate.end_hold()
    assert gate.locked is False
    assert gate.secure() is True
    assert states(mock_factory.pin(17)) == [False, True, False, True]


def test_close_is_idempotent_and_final(make_gate: Callable[..., GateIO], mock_factory: MockFactory) -> None:
    gate = make_gate(debounce_ms=20)
    beam = mock_factory.pin(22)
    beam.drive_high()  # a debounce timer running at close
    gate.close()
    gate.close()
    time.sleep(0.05)
    with pytest.raises(queue.Empty):
        gate.events.get_nowait()
    for action in (gate.release, gate.secure, gate.hold_open, gate.lights):
        with pytest.raises(DeviceClosed):
            action()
    assert gate.health()["connected"] is False


def test_bad_settings(mock_factory: MockFactory) -> None:
    with pytest.raises(InvalidArgument, match="fail_mode"):
        GateIO(**PINS, fail_mode="fail-open", pin_factory=mock_factory)
    with pytest.raises(DeviceUnavailable, match="GPIO"):
        GateIO(**{**PINS, "red_pin": 23}, pin_factory=mock_factory)
    with GateIO(**PINS, pin_factory=mock_factory) as gate:
        assert gate.locked  # the failed attempt released every pin it had taken
