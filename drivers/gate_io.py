"""The exit gate's wiring: lock relay, door sensor, passage beam, lights, buzzer, fire alarm, exit button.

Keyword names are GpioSection's (plus two TimingsSection fault timings), so the lane builds it with
``GateIO(**asdict(cfg.gpio), pin_factory=...)``. Tests pass gpiozero's MockFactory; nothing is patched.

The lock is "locked" when the relay holds the gate shut. ``fail_mode`` says what the wiring does with no
power: "fail-safe" (a maglock: unpowered = open) or "fail-secure" (a strike: unpowered = locked). Either
way the driver starts locked, lights off, buzzer silent; for fail-secure that means the relay is never
energized at construction, for fail-safe it is energized at once. close() leaves the relay unpowered,
so the wiring decides, exactly as on a power cut.

A fire alarm releases the lock at once, from the input's own thread, whatever the lane is doing, and
secure() is refused while it lasts. When it ends the gate stays open until the lane calls secure().
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gpiozero import Button, DigitalInputDevice, DigitalOutputDevice, GPIOZeroError, OutputDevice
from gpiozero.pins import Factory

from drivers.errors import DeviceClosed, DeviceUnavailable, InvalidArgument

log = logging.getLogger(__name__)

FAIL_MODES = ("fail-safe", "fail-secure")


class GateEventKind(enum.StrEnum):
    BEAM_BLOCKED = "beam-blocked"
    BEAM_CLEARED = "beam-cleared"  # one passage
    DOOR_OPENED = "door-opened"
    DOOR_CLOSED = "door-closed"
    FIRE_ALARM_ON = "fire-alarm-on"
    FIRE_ALARM_OFF = "fire-alarm-off"
    EXIT_BUTTON = "exit-button"
    FORCED_DOOR = "forced-door"  # fault: open while locked for door_fault_ms; ends with DOOR_CLOSED
    BEAM_STUCK = "beam-stuck"  # fault: blocked for beam_blocked_fault_s; ends with BEAM_CLEARED


@dataclass(frozen=True)
class GateEvent:
    """Something the gate's inputs said, after debouncing; ``at`` is time.monotonic()."""

    kind: GateEventKind
    at: float


class BuzzerPattern(enum.Enum):
    """(seconds on, seconds off, repeats; None repeats until silence())."""

    ACCEPT = (0.1, 0.1, 1)
    DENY = (0.15, 0.1, 3)
    ALARM = (0.2, 0.1, 10)  # an alarm that ends by itself (about 3 s): somebody passed who should not have
    FAULT = (0.5, 0.5, None)


class _Input:
    """One input, reported only once it has held a new level for the debounce time."""

    def __init__(
        self, device: DigitalInputDevice, debounce_s: float, on_change: Callable[[bool], None]
    ) -> None:
        self.device = device
        self.active = bool(device.is_active)
        self._debounce_s = debounce_s
        self._on_change = on_change
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._closed = False
        device.when_activated = self._edge
        device.when_deactivated = self._edge

    def _edge(self) -> None:
        if self._debounce_s == 0:
            self._settle()
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self._closed:
                return
            self._timer = threading.Timer(self._debounce_s, self._settle)
            self._timer.daemon = True
            self._timer.start()

    def _settle(self) -> None:
        with self._lock:
            if self._closed:
                return
            active = bool(self.device.is_active)
            changed = active != self.active
            self.active = active
        if changed:
            self._on_change(active)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
        self.device.close()


class GateIO:
    """The gate's pins; inputs that contradict the lock are faults. Events: ``on_event`` or ``events``."""

    def __init__(
        self,
        *,
        relay_pin: int,
        relay_active_high: bool = True,
        fail_mode: str = "fail-safe",
        door_sensor_pin: int,
        door_open_when_high: bool = True,
        beam_pin: int,
        beam_blocked_when_high: bool = True,
        green_pin: int,
        red_pin: int,
        buzzer_pin: int,
        fire_alarm_pin: int,
        fire_alarm_when_high: bool = True,
        exit_button_pin: int | None = None,
        debounce_ms: int = 20,
        door_fault_ms: int = 1500,
        beam_blocked_fault_s: float = 120.0,
        on_event: Callable[[GateEvent], None] | None = None,
        pin_factory: Factory | None = None,
    ) -> None:
        if fail_mode not in FAIL_MODES:
            raise InvalidArgument(f"fail_mode {fail_mode!r}: expected one of {', '.join(FAIL_MODES)}")
        if debounce_ms < 0 or door_fault_ms <= 0 or beam_blocked_fault_s <= 0:
            raise InvalidArgument("debounce_ms must be >= 0, door_fault_ms and beam_blocked_fault_s > 0")
        self.fail_mode = fail_mode
        self._energize_to_lock = fail_mode == "fail-safe"
        self._door_fault_s = door_fault_ms / 1000
        self._beam_fault_s = beam_blocked_fault_s
        self.events: queue.Queue[GateEvent] = queue.Queue()
        self._on_event = on_event or self.events.put
        self._lock = threading.RLock()
        self._locked = True
        self._holds: set[str] = set()
        self._faults: set[GateEventKind] = set()
        self._fault_timers: dict[GateEventKind, threading.Timer] = {}
        self._counts = {"passages": 0, "forced_door_faults": 0, "beam_stuck_faults": 0}
        self._last_error: str | None = None
        self._closed = False
        self._outputs: list[OutputDevice] = []
        self._inputs: list[_Input] = []
        debounce_s = debounce_ms / 1000
        try:
            self._relay = self._output(
                OutputDevice,
                relay_pin,
                active_high=relay_active_high,
                initial_value=self._energize_to_lock,
                pin_factory=pin_factory,
            )
            self._green = self._output(DigitalOutputDevice, green_pin, pin_factory=pin_factory)
            self._red = self._output(DigitalOutputDevice, red_pin, pin_factory=pin_factory)
            self._buzzer = self._output(DigitalOutputDevice, buzzer_pin, pin_factory=pin_factory)
            self._fire = self._input(
                fire_alarm_pin, fire_alarm_when_high, debounce_s, self._fire_changed, pin_factory
            )
            self._door = self._input(
                door_sensor_pin, door_open_when_high, debounce_s, self._door_changed, pin_factory
            )
            self._beam = self._input(
                beam_pin, beam_blocked_when_high, debounce_s, self._beam_changed, pin_factory
            )
            if exit_button_pin is not None:
                # A normally-open button to ground on the internal pull-up, the usual request-to-exit wiring.
                button = Button(exit_button_pin, pull_up=True, pin_factory=pin_factory)
                self._inputs.append(_Input(button, debounce_s, self._button_changed))
        except GPIOZeroError as exc:
            self.close()
            raise DeviceUnavailable(f"gate GPIO: {exc}") from exc
        with self._lock:
            if self._fire.active:
                self._fire_changed(True)
            if self._door.active:
                self._door_changed(True, report=False)
            if self._beam.active:
                self._beam_changed(True, report=False)

    def __enter__(self) -> GateIO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def locked(self) -> bool:
        return self._locked

    def release(self) -> None:
        """Let the gate open (one passage, or a hold)."""
        with self._lock:
            self._check_open()
            self._set_locked(False)
            self._cancel_fault_timer(GateEventKind.FORCED_DOOR)

    def secure(self) -> bool:
        """Lock again; refused (False) while a fire alarm or hold_open() keeps the gate open."""
        with self._lock:
            self._check_open()
            if self._holds:
                log.info("secure() refused: gate held open by %s", ", ".join(sorted(self._holds)))
                return False
            self._set_locked(True)
            return True

    def hold_open(self) -> None:
        """Open and stay open (an attendant's emergency, an evacuation) until end_hold()."""
        with self._lock:
            self._check_open()
            self._holds.add("hold-open")
            self._set_locked(False)

    def end_hold(self) -> None:
        """Undo hold_open(); the gate stays open until secure()."""
        with self._lock:
            self._holds.discard("hold-open")

    def lights(self, *, green: bool = False, red: bool = False, blink: bool = False) -> None:
        """Set both lights at once (a lit colour blinks at 2 Hz with blink=True); no argument is all off."""
        with self._lock:
            self._check_open()
            for led, on in ((self._green, green), (self._red, red)):
                if on and blink:
                    led.blink(on_time=0.25, off_time=0.25)
                else:
                    led.value = on

    def buzz(self, pattern: BuzzerPattern) -> None:
        """Sound a pattern in the background; a new pattern replaces the one playing."""
        with self._lock:
            self._check_open()
            on_s, off_s, repeats = pattern.value
            self._buzzer.blink(on_time=on_s, off_time=off_s, n=repeats)

    def silence(self) -> None:
        with self._lock:
            self._check_open()
            self._buzzer.off()

    @property
    def pin_factory(self) -> Any:
        """The gpiozero pin factory the gate's devices were made with (the doctor's GPIO check, in a
        running lane, asks this one instead of loading a second backend on pins in use)."""
        return self._relay.pin_factory

    def health(self) -> dict[str, Any]:
        return {
            "connected": not self._closed,
            "fail_mode": self.fail_mode,
            "locked": self._locked,
            "holds": sorted(self._holds),
            "door_open": self._door.active if not self._closed else None,
            "beam_blocked": self._beam.active if not self._closed else None,
            "fire_alarm": self._fire.active if not self._closed else None,
            "faults": sorted(self._faults),
            **self._counts,
            "last_error": self._last_error,
        }

    def close(self) -> None:
        """Stop reporting and leave the relay unpowered, lights and buzzer off (see the module docstring)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for timer in self._fault_timers.values():
                timer.cancel()
            self._fault_timers.clear()
        for each in self._inputs:
            each.close()
        for device in self._outputs:
            device.off()
            device.close()

    def _output(self, kind: type[OutputDevice], pin: int, **kwargs: Any) -> Any:
        device = kind(pin, **kwargs)
        self._outputs.append(device)
        return device

    def _input(
        self,
        pin: int,
        active_high: bool,
        debounce_s: float,
        on_change: Callable[[bool], None],
        pin_factory: Factory | None,
    ) -> _Input:
        # The sensors bring their own pull resistors (their outputs drive both levels), hence no pull here.
        device = DigitalInputDevice(pin, pull_up=None, active_state=active_high, pin_factory=pin_factory)
        watched = _Input(device, debounce_s, on_change)
        self._inputs.append(watched)
        return watched

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceClosed("the gate I/O is closed")

    def _set_locked(self, locked: bool) -> None:
        self._locked = locked
        self._relay.value = locked == self._energize_to_lock

    def _emit(self, kind: GateEventKind) -> None:
        try:
            self._on_event(GateEvent(kind, time.monotonic()))
        except Exception:
            log.exception("gate event callback failed for %s", kind)

    def _fire_changed(self, active: bool) -> None:
        with self._lock:
            if self._closed:
                return
            if active:
                log.warning("fire alarm: gate released and held open")
                self._holds.add("fire-alarm")
                self._set_locked(False)
            else:
                log.warning("fire alarm over: gate stays open until secured")
                self._holds.discard("fire-alarm")
        self._emit(GateEventKind.FIRE_ALARM_ON if active else GateEventKind.FIRE_ALARM_OFF)

    def _door_changed(self, opened: bool, *, report: bool = True) -> None:
        with self._lock:
            if self._closed:
                return
            if opened and self._locked:
                self._start_fault_timer(
                    GateEventKind.FORCED_DOOR, self._door_fault_s, self._door_still_forced
                )
            if not opened:
                self._cancel_fault_timer(GateEventKind.FORCED_DOOR)
                self._faults.discard(GateEventKind.FORCED_DOOR)
        if report:
            self._emit(GateEventKind.DOOR_OPENED if opened else GateEventKind.DOOR_CLOSED)

    def _beam_changed(self, blocked: bool, *, report: bool = True) -> None:
        with self._lock:
            if self._closed:
                return
            if blocked:
                self._start_fault_timer(
                    GateEventKind.BEAM_STUCK, self._beam_fault_s, self._beam_still_blocked
                )
            else:
                self._cancel_fault_timer(GateEventKind.BEAM_STUCK)
                self._faults.discard(GateEventKind.BEAM_STUCK)
                self._counts["passages"] += 1
        if report:
            self._emit(GateEventKind.BEAM_BLOCKED if blocked else GateEventKind.BEAM_CLEARED)

    def _button_changed(self, pressed: bool) -> None:
        if pressed and not self._closed:
            self._emit(GateEventKind.EXIT_BUTTON)

    def _door_still_forced(self) -> bool:
        return self._door.active and self._locked

    def _beam_still_blocked(self) -> bool:
        return self._beam.active

    def _start_fault_timer(self, fault: GateEventKind, after_s: float, still: Callable[[], bool]) -> None:
        self._cancel_fault_timer(fault)
        timer = threading.Timer(after_s, self._fault_due, args=(fault, still))
        timer.daemon = True
        self._fault_timers[fault] = timer
        timer.start()

    def _cancel_fault_timer(self, fault: GateEventKind) -> None:
        timer = self._fault_timers.pop(fault, None)
        if timer is not None:
            timer.cancel()

    def _fault_due(self, fault: GateEventKind, still: Callable[[], bool]) -> None:
        with self._lock:
            if self._closed or self._fault_timers.get(fault) is not threading.current_thread() or not still():
                return
            del self._fault_timers[fault]
            self._faults.add(fault)
            counter = "forced_door_faults" if fault is GateEventKind.FORCED_DOOR else "beam_stuck_faults"
            self._counts[counter] += 1
            self._last_error = f"{fault}: " + (
                f"door open {self._door_fault_s:g} s while locked"
                if fault is GateEventKind.FORCED_DOOR
                else f"beam blocked over {self._beam_fault_s:g} s"
            )
            log.warning("gate fault %s", self._last_error)
        self._emit(fault)
