"""`make demo`: the whole store on one machine, with scripted shoppers and a timeline anyone can read.

Real pieces throughout: the simulated bank and the payment system on their own HTTP ports, two lanes built
by the same `open_lane` as on a Pi (gpiozero's MockFactory for the pins, the in-process NFC transport for
the phone, or pcscd + vpcd with --vpcd), the reference phone (`phone.Phone`) on state folders, and each
lane's forwarder settling charges over HTTP. The two lanes tell each other about every pass over a
nats-server started here (JetStream), or, where nats-server is not installed, over an in-process bus of
the same records (the demo says which). Nothing is faked: every verdict below is the legality check's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from gpiozero.pins.mock import MockFactory

from drivers.nfc_inprocess import InProcessReader
from gate import config as lane_config
from gate import panel
from gate.lane import TapOutcome
from gate.legality.reasons import text_of
from gate.money import format_amount
from gate.panel import Accounts, PanelError, PanelServer
from gate.peers.server import NatsServer, NatsServerError, die_with_parent, local_nodes
from gate.peers.transport import LocalBus, LocalTransport, Transport
from gate.protocol.commands import INS_CHALLENGE
from gate.protocol.documents import Signed, sign
from gate.protocol.keys import SigningKey, write_public_key, write_secret_key
from gate.service import LaneService, open_lane
from gate.store.files import init_database
from payments.local import LocalStack
from phone.card import ExitCard
from phone.errors import PhoneError
from phone.terminal import Phone
from selfcheckout.demo_kiosk import DemoKiosk, kiosk_shopper, open_kiosk

CURRENCY = "EUR"
PRODUCTS = (  # code, name, category, unit, price (minor units; per kg for "kg")
    ("4006381333931", "Stabilo pen", "stationery", "each", 129),
    ("8712345678906", "Milk 1 l", "dairy", "each", 119),
    ("5000112637922", "Cola 1.5 l", "drinks", "each", 189),
    ("7622210449283", "Chocolate bar", "sweets", "each", 249),
    ("5012345678900", "Single malt", "age-restricted", "each", 3499),
    ("9780201379624", "Paperback", "books", "each", 1299),
    ("2100231000003", "Gouda (per kg)", "cheese", "kg", 1590),
)
GOUDA_412G = "2100231004124"  # weight-embedded EAN-13: item 00231, 412 g


def lane_config_text(*, database: Path, gate_key: Path, ps_key: Path, ps_url: str, **sections: Any) -> str:
    """The example config with this machine's paths and the demo's short timings (`sections` on top)."""
    base: dict[str, dict[str, Any] | None] = {
        "scanner": None,  # the demo's lane has no scanner of its own
        "lane": {"database": str(database), "gate_key_file": str(gate_key)},
        "payments": {"url": ps_url, "public_key_files": [str(ps_key)]},
        "timings": {"open_timeout_s": 2.0, "denied_display_ms": 100},
        "forwarder": {"backoff_base_ms": 50, "backoff_cap_ms": 400, "sync_interval_s": 1.0},
    }
    for name, values in sections.items():
        base[name] = {**(base.get(name) or {}), **values}
    return lane_config.example_with(**base)


@dataclass
class Timeline:
    """Prints who did what, with the time since the store opened."""

    echo: Callable[[str], None]
    started: float = field(default_factory=time.monotonic)

    def __call__(self, actor: str, message: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:7.3f}s] {actor:<9} {message}")

    def section(self, title: str) -> None:
        self.echo(f"\n== {title}")


@dataclass
class Tally:
    verdicts: Counter[str] = field(default_factory=Counter)
    denials: Counter[str] = field(default_factory=Counter)


@dataclass
class DemoLane:
    """One lane of the demo store: its service, reader and pins."""

    service: LaneService
    reader: Any
    pins: MockFactory


class Store:
    """The running store: payment system, bank, two lanes, and helpers to walk shoppers through them."""

    def __init__(self, folder: Path, stack: LocalStack, lanes: list[DemoLane], say: Timeline) -> None:
        self.folder = folder
        self.stack = stack
        self.lanes = lanes
        self.service = lanes[0].service
        self.reader = lanes[0].reader
        self.pins = lanes[0].pins
        self.say = say
        self.tally = Tally()
        cfg = self.service.config
        self.beam = self.pins.pin(cfg.gpio.beam_pin)
        self.fire = self.pins.pin(cfg.gpio.fire_alarm_pin)

    def money(self, amount: int) -> str:
        return format_amount(amount, CURRENCY)

    def shopper(self, name: str, *, top_up: int, estimate: int) -> Phone:
        phone = Phone.init(self.folder / "phones" / name)
        phone.enrol(
            self.stack.url,
            name,
            bank_account=f"DE-{name.upper()}",
            token=self.stack.admin_token,
        )
        if top_up:
            self.stack.top_up(name, top_up)
        voucher = phone.request_hold(estimate)
        self.say(
            name,
            f"enrolled; hold of {self.money(voucher.amount)} = {self.money(voucher.stored_value)} "
            f"stored value + {self.money(voucher.bank)} at the bank",
        )
        return phone

    def shop(self, phone: Phone, name: str, codes: list[str]) -> None:
        for code in codes:
            result = phone.scan(code)
            self.say(
                name,
                f"scans {result.product.name:<15} {self.money(result.line.total):>9}   total "
                f"{self.money(result.total)} of {self.money(result.hold_amount)}"
                + ("; goes on" if result.remaining >= 0 else "; over the hold!"),
            )

    def present(self, name: str, handler: Any, lane: int = 0) -> TapOutcome | None:
        """Put a phone (any card handler) on a lane's reader until the gate decided; print what it decided."""
        service, reader = self.lanes[lane].service, self.lanes[lane].reader
        before = service.lane.last_outcome
        reader.place(handler)
        decided = self._wait(lambda: service.lane.last_outcome is not before, 5.0)
        reader.lift()
        outcome = service.lane.last_outcome
        gate = service.config.lane.gate_id
        if not decided or outcome is None:
            self.say(gate, "no answer from the gate")
            return None
        self.tally.verdicts[outcome.verdict] += 1
        codes = outcome.decision.codes if outcome.verdict != "pass" else ()
        self.tally.denials.update(codes)
        reasons = f": {'; '.join(f'{text_of(c)} ({c})' for c in codes)}" if codes else ""
        steps = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in outcome.timings.items())
        self.say(gate, f"{name}: {outcome.verdict.upper()}{reasons} ({steps})")
        return outcome

    def tap(
        self, name: str, card: ExitCard, *, walk_through: bool = True, handler: Any = None, lane: int = 0
    ) -> None:
        """A shopper's phone on a lane's reader; it verifies the gate's receipt, then they walk through."""
        outcome = self.present(f"{name}'s phone", handler or card, lane)
        if outcome is None:
            return
        if card.wait(2.0) and card.receipt is not None:
            self.say(name, f"phone verified the gate's signed receipt ({card.receipt.doc.verdict})")
        else:
            self.say(name, f"phone refused the gate's receipt ({card.refused or 'none came'})")
        if outcome.opened and walk_through:
            service, pins = self.lanes[lane].service, self.lanes[lane].pins
            beam = pins.pin(service.config.gpio.beam_pin)
            beam.drive_high()
            time.sleep(0.05)
            beam.drive_low()
            self._wait(lambda: service.lane.state == "idle", 3.0)
            self.say(service.config.lane.gate_id, f"{name} walked through; gate secured")

    def backlog(self) -> tuple[int, int]:
        """Charges not yet settled at every lane: (count, amount)."""
        backlogs = [lane.service.store.outbox_backlog() for lane in self.lanes]
        return sum(b.count for b in backlogs), sum(b.amount for b in backlogs)

    def settle(self, timeout_s: float = 15.0) -> None:
        for lane in self.lanes:
            if lane.service.forwarder is not None:
                lane.service.forwarder.notify()
        self._wait(lambda: self.backlog()[0] == 0, timeout_s)

    @staticmethod
    def _wait(ready: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return True
            time.sleep(0.02)
        return ready()

    def notice(self, phone: Phone, name: str) -> None:
        deadline = time.monotonic() + 10.0
        notice = phone.fetch_notice()
        while notice is None and time.monotonic() < deadline:
            time.sleep(0.05)
            notice = phone.fetch_notice()
        if notice is None:
            self.say(name, "no deduction notice yet")
            return
        ref = f" (ref {notice.bank_ref})" if notice.bank_ref else ""
        self.say(
            name,
            f"deduction notice verified: {self.money(notice.total)} = "
            f"{self.money(notice.stored_value)} stored value + {self.money(notice.bank)} bank{ref}; "
            f"{self.money(notice.released)} of the hold released",
        )


class ReplayCard:
    """An attacker's phone: answers any challenge with a presentation recorded from someone else's tap."""

    def __init__(self, recorded: bytes) -> None:
        self.recorded = recorded

    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        return self.recorded if ins == INS_CHALLENGE else b""


class Eavesdropper:
    """Sits between a phone and the reader and records what the phone presented, as a skimmer would."""

    def __init__(self, card: ExitCard) -> None:
        self.card = card
        self.presented = b""

    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        answer = self.card.handle(ins, p1, p2, data)
        if ins == INS_CHALLENGE:
            self.presented = answer
        return answer


@contextmanager
def peers_transports(folder: Path, say: Timeline, count: int) -> Iterator[tuple[list[Transport | None], Any]]:
    """What carries the lanes' pass records: a nats-server node when installed, else an in-process bus.

    With NATS the lanes' configs name the node ([peers] servers) and open_lane connects; the bus is
    handed to open_lane as a transport of each lane's own."""
    try:
        node = NatsServer(folder / "nats", local_nodes(1)[0], preexec_fn=die_with_parent)
        node.start()
    except NatsServerError as exc:
        say("store", f"{exc}: the lanes share their passes over an in-process bus instead (same records)")
        bus = LocalBus()
        yield [LocalTransport(bus) for _ in range(count)], None
        return
    try:
        say("store", f"nats-server (JetStream) at {node.url}: the lanes share every pass through it")
        yield [None] * count, {"servers": [node.url], "replicas": 1}
    finally:
        node.stop()


@contextmanager
def open_store(folder: Path, say: Timeline, *, vpcd: bool = False) -> Iterator[Store]:
    with ExitStack() as stack:
        # The payment system signs the lane's GS1 layouts into its feed: the phones split labels as it does.
        gs1 = tuple(
            lane_config.Gs1Layout(**table)
            for table in lane_config.read_toml(lane_config.EXAMPLE)["barcodes"]["gs1"]
        )
        ps = stack.enter_context(LocalStack.start(folder, currency=CURRENCY, gs1=gs1))
        say("store", f"bank at {ps.bank.url}, payment system at {ps.url} (store {ps.store_id})")
        items = [
            {
                "code": c,
                "name": n,
                "category": cat,
                "unit": u,
                "price": p,
                "valid_from": int(time.time()) - 60,
            }
            for c, n, cat, u, p in PRODUCTS
        ]
        version = ps.admin("POST", "/v1/catalog/prices", json={"items": items})["version"]
        say("store", f"catalog of {len(items)} products published (feed version {version})")
        write_public_key(folder / "keys" / "ps.pub", ps.key.public_key)
        gates = ("gate-01", "gate-02")
        gate_keys = {gate: SigningKey.generate() for gate in gates}
        for gate, key in gate_keys.items():  # both enrolled first: each lane's feed lists the other's key
            write_secret_key(folder / "keys" / f"{gate}.key", key)
            ps.admin("POST", "/v1/gates", json={"gate": gate, "public_key": key.public_key.hex()})
        transports, peers = stack.enter_context(peers_transports(folder, say, len(gates)))
        lanes = []
        for i, gate in enumerate(gates):
            lane_folder = folder / gate
            lane_folder.mkdir()
            (lane_folder / "lane.toml").write_text(
                lane_config_text(
                    database=lane_folder / "gate.db",
                    gate_key=folder / "keys" / f"{gate}.key",
                    ps_key=folder / "keys" / "ps.pub",
                    ps_url=ps.url,
                    lane={"gate_id": gate},
                    **({"peers": peers} if peers else {}),
                )
            )
            cfg = lane_config.load(lane_folder / "lane.toml")
            init_database(cfg.lane.database)
            pins = MockFactory()
            if vpcd:
                reader = None  # open_lane opens the PC/SC reader named in the config
                name = "Virtual PCD 00 00" if i == 0 else "Virtual PCD 00 01"
                cfg = dataclasses.replace(cfg, reader=dataclasses.replace(cfg.reader, name_pattern=name))
            else:
                reader = stack.enter_context(InProcessReader())
            service = stack.enter_context(
                open_lane(cfg, reader=reader, pin_factory=pins, peers_transport=transports[i])
            )
            result = service.forwarder.sync_once() if service.forwarder else None
            say(
                gate,
                f"up ({cfg.gpio.fail_mode}, locked); enrolled at the payment system with key "
                f"{gate_keys[gate].key_id}; catalog and the store's gate keys synced"
                f"{f' to version {result.version}' if result else ''}",
            )
            stop = threading.Event()
            thread = threading.Thread(target=service.lane.run, args=(stop, 0.05), name=gate, daemon=True)
            thread.start()
            stack.callback(thread.join, 5)
            stack.callback(stop.set)
            lanes.append(DemoLane(service, service.reader, pins))
        yield Store(folder, ps, lanes, say)


def scenarios(s: Store) -> None:
    say = s.say
    say.section(
        "1. A normal exit: the gate opens at once, the charge settles later (stored value, then bank)"
    )
    alice = s.shopper("alice", top_up=500, estimate=3000)
    s.shop(alice, "alice", ["4006381333931", "8712345678906", GOUDA_412G, "7622210449283"])
    signed = alice.confirm()
    say("alice", f"confirms and signs the list ({len(signed.doc.items)} lines, {s.money(signed.doc.total)})")
    skimmer = Eavesdropper(alice.card())
    s.tap("alice", skimmer.card, handler=skimmer)
    s.settle()
    say("forwarder", "alice's charge forwarded and settled")
    s.notice(alice, "alice")

    say.section("2. A tampered list: a price lowered after signing")
    mallory = s.shopper("mallory", top_up=0, estimate=2000)
    s.shop(mallory, "mallory", ["9780201379624"])
    good = mallory.confirm()
    cheaper = dataclasses.replace(good.doc.items[0], unit_price=99, line_total=99)
    forged_doc = dataclasses.replace(good.doc, items=(cheaper,), total=99)
    forged = Signed(good.type, good.kid, forged_doc.encode(), good.sig, forged_doc)
    say("mallory", f"edits the signed list: {s.money(good.doc.total)} -> {s.money(forged_doc.total)}")
    s.tap("mallory", ExitCard(mallory.key, mallory.visit().voucher, forged, mallory.profile.trusted_gates()))

    say.section("3. A total over the hold")
    bob = s.shopper("bob", top_up=0, estimate=500)
    s.shop(bob, "bob", ["5000112637922", "7622210449283", "4006381333931"])
    try:
        bob.confirm()
    except PhoneError as exc:
        say("bob", f"phone refuses to sign: {exc}")
    visit = bob.visit()
    over = sign(
        visit.basket.shopping_list(
            hold=visit.voucher.doc.hold, store=visit.voucher.doc.store, created=bob.now()
        ),
        bob.key,
    )
    total, hold = s.money(over.doc.total), s.money(visit.voucher.doc.amount)
    say("bob", f"a modified app signs it anyway ({total} against {hold})")
    s.tap("bob", ExitCard(bob.key, visit.voucher, over, bob.profile.trusted_gates()))

    say.section("4. A replayed presentation: alice's recorded tap, played back by another phone")
    s.present("replayed presentation", ReplayCard(skimmer.presented))

    say.section("5. The payment system goes offline; shoppers keep leaving")
    carol = s.shopper("carol", top_up=1000, estimate=2500)
    dave = s.shopper("dave", top_up=0, estimate=1500)
    frank = s.shopper("frank", top_up=0, estimate=2000)
    s.shop(carol, "carol", ["5000112637922", "7622210449283"])
    s.shop(dave, "dave", ["8712345678906", "4006381333931"])
    s.shop(frank, "frank", ["5000112637922", "4006381333931"])
    for phone in (carol, dave, frank):
        phone.confirm()
    s.stack.down()
    say("store", "payment system OFFLINE")
    s.tap("carol", carol.card())
    s.tap("dave", dave.card(), lane=1)
    say.section("6. Still offline: a cloned phone tries the other lane")
    s.tap("frank", frank.card())
    clone = frank.card()  # a second phone holding frank's key and list
    say("mallory", "a cloned phone with frank's key and signed list, at gate-02 a moment later")
    s.tap("frank-clone", clone, lane=1)
    count, amount = s.backlog()
    say(
        "store",
        f"{count} charge(s) waiting in the lanes' outboxes ({s.money(amount)}); both lanes kept deciding "
        "offline and told each other every pass",
    )
    s.stack.up()
    say("store", "payment system back ONLINE")
    s.settle()
    say("forwarder", "backlog drained: every charge settled exactly once")
    s.notice(carol, "carol")
    s.notice(dave, "dave")

    say.section("7. Fire alarm: the gate opens and holds open, taps are answered 'emergency'")
    erin = s.shopper("erin", top_up=0, estimate=1000)
    s.shop(erin, "erin", ["8712345678906"])
    erin.confirm()
    s.fire.drive_high()
    say("gate", "fire alarm input ACTIVE")
    s._wait(lambda: s.service.lane.state == "emergency", 2.0)
    say("gate", f"lane state {s.service.lane.state}; lock released: {not s.service.io.locked}")
    s.tap("erin", erin.card(), walk_through=False)
    s.fire.drive_low()
    s._wait(lambda: s.service.lane.state == "idle", 2.0)
    say("gate", f"fire alarm cleared: lane {s.service.lane.state}, locked: {s.service.io.locked}")


def kiosk_scenario(s: Store, kiosk: DemoKiosk) -> None:
    say = s.say
    say.section("8. At the kiosk: scan there, confirm and sign on the phone, leave through the gate")
    say("kiosk", f"kiosk-01 screen at {kiosk.url}")
    grace = s.shopper("grace", top_up=1000, estimate=2000)
    codes = ["8712345678906", "4006381333931", GOUDA_412G, "8712345678906"]
    if kiosk_shopper(kiosk, grace, "grace", codes, say, s.money):
        s.tap("grace", grace.card())
        s.settle()
        s.notice(grace, "grace")


def summary(s: Store) -> bool:
    """Print the closing table; True when the gate's passes, the payment system's charges and the money
    moved all agree."""
    s.settle()
    report = s.stack.reconcile()
    events = [e for lane in s.lanes for e in lane.service.store.recent_events(1000)]
    passes = [e for e in events if e.verdict == "pass"]
    gate_total = sum(e.total for e in passes)
    charges = report["charges"]
    money = report["money"]
    moved = money["stored_value"] + money["bank"] + money["debt"]
    rows = [
        ("passes at the gates", str(len(passes)), s.money(gate_total)),
        ("charges at the payment system", str(charges["count"]), s.money(charges["amount"])),
        ("charges settled", str(charges["settled"]), s.money(charges["settled_amount"])),
        ("  from stored value", "", s.money(money["stored_value"])),
        ("  from the bank", "", s.money(money["bank"])),
        ("  as debt", "", s.money(money["debt"])),
        ("unforwarded at the gates", str(s.backlog()[0]), ""),
    ]
    for verdict, n in sorted(s.tally.verdicts.items()):
        rows.append((f"receipts '{verdict}'", str(n), ""))
    for code, n in sorted(s.tally.denials.items()):
        rows.append((f"  reason {code}", str(n), ""))
    s.say.echo("\n== Summary")
    width = max(len(r[0]) for r in rows)
    for label, count, amount in rows:
        s.say.echo(f"  {label:<{width}}  {count:>5}  {amount:>12}")
    balanced = (
        report["balanced"]
        and len(passes) == charges["count"] == charges["settled"]
        and gate_total == charges["amount"] == moved
    )
    s.say.echo(f"  {'balanced':<{width}}  {'yes' if balanced else 'NO'}")
    for code in sorted(s.tally.denials):
        s.say.echo(f"  {code}: {text_of(code)}")
    if report["problems"]:
        s.say.echo("  problems: " + "; ".join(report["problems"]))
    return balanced


def run(
    *,
    serve: bool = False,
    vpcd: bool = False,
    folder: Path | None = None,
    echo: Callable[[str], None] = click.echo,
    stop: threading.Event | None = None,
) -> bool:
    """Run the scripted store; with serve, keep it up with the lane's panel until Ctrl-C (or `stop` is set).
    Returns whether the summary balanced."""
    say = Timeline(echo)
    with ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="selfcheckout-demo-")))
        log_handler = logging.FileHandler(folder / "store.log")
        log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(log_handler)
        root.setLevel(logging.INFO)
        stack.callback(root.removeHandler, log_handler)
        stack.callback(log_handler.close)
        with (
            open_store(folder, say, vpcd=vpcd) as store,
            open_kiosk(folder, store.stack, folder / "keys" / "ps.pub") as kiosk,
        ):
            scenarios(store)
            kiosk_scenario(store, kiosk)
            balanced = summary(store)
            if serve:
                with serve_panel(store, echo):
                    echo(
                        f"The store keeps running: payment system {store.stack.url}, kiosk screen "
                        f"{kiosk.url}, state in {folder}. Ctrl-C to stop."
                    )
                    with suppress(KeyboardInterrupt):
                        _stop_on_signals()
                        (stop or threading.Event()).wait()
    return balanced


def _stop_on_signals() -> None:
    """Ctrl-C, and a plain `kill` as well, end the serving store through its clean shutdown: also when it
    was started with SIGINT ignored, as a shell's background job is (Python then leaves SIGINT ignored)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)


@contextmanager
def serve_panel(store: Store, echo: Callable[[str], None]) -> Iterator[PanelServer]:
    """The lane's technician panel on 127.0.0.1 (the config's port, or a free one if it is taken), with a
    technician account made for this run; prints where and how to log in."""
    secret = "demo-" + secrets.token_hex(4)
    with Accounts(store.folder / "panel.db") as accounts:
        accounts.add("demo", "technician", secret)
        try:
            server = panel.serve(store.service, accounts, host="127.0.0.1")
        except PanelError:
            server = panel.serve(store.service, accounts, host="127.0.0.1", port=0)
        with server:
            echo(f"\n== The lane's panel: {server.url}/  (log in as demo, secret {secret})")
            yield server


@click.command("demo")
@click.option("--serve", is_flag=True, help="Keep the store running after the script, with the lane's panel.")
@click.option("--vpcd", is_flag=True, help="Tap through a running pcscd + vpcd instead of in-process.")
@click.option(
    "--state",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep the store's databases and phones in this folder (default: a temporary one).",
)
def demo_command(serve: bool, vpcd: bool, state: Path | None) -> None:
    """The whole store on one machine: bank, payment system, two lanes, scripted shoppers, a timeline."""
    if state is not None:
        # The script enrols its shoppers and gate afresh and balances its own charges: on a folder that
        # holds a previous run, it would meet that run's phones and payments.
        if state.exists() and any(state.iterdir()):
            raise click.ClickException(
                f"{state}: holds a previous demo run; the scripted demo starts from a new or empty folder "
                "(remove it, or pass another --state)"
            )
        try:
            state.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise click.ClickException(f"{state}: cannot make the state folder: {exc.strerror}") from exc
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    if not run(serve=serve, vpcd=vpcd, folder=state):
        raise click.ClickException("the summary does not balance")
