"""The reference mobile terminal (claims 1-4): what a shopping app does, step by step, on a state folder.

    phone = Phone.init(state_dir)                         # the shopper's key: the "pre-set signature"
    phone.enrol("http://ps:8600", "alice", "DE89...")     # pin the PS keys; the gate keys from its feed
    phone.request_hold(5000)                              # claim 3: the shopper's estimate, a signed voucher
    phone.scan("4006381333931")                           # claim 4: item by item, a running total
    phone.confirm()                                       # claim 2: sign the list
    phone.card()                                          # the NFC service the gate talks to (claim 1, 2-3)
    phone.fetch_notice()                                  # claim 1 step 4: what was taken, from where

State folder (every file replaced atomically; see phone.storage):

    shopper.key            the secret key, mode 600
    profile.json           user name, bank account, PS URL, store, currency, pinned PS keys, the gate
                           keys of the last verified feed, GS1 layouts
    catalog.json           the store's prices from the PS feed, and the feed version they are at
    pending-hold.cbor      a signed hold request sent but not answered yet (resent as is: idempotent)
    current.json           {"hold": hex} - the visit in progress
    visits/<hold hex>/     voucher.cbor, basket.json, list.cbor, receipt.cbor, notice.cbor

A visit is one hold: its voucher, the basket scanned against it, the signed list, the gate's receipt and,
later, the payment system's deduction notice.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import requests

from gate.barcodes import BarcodeError, parse_scan, resolve
from gate.catalog import CatalogError, MemoryCatalog, PriceChange, Product
from gate.config import Gs1Layout
from gate.errors import ProtocolError, SignatureError
from gate.money import format_amount
from gate.protocol.documents import (
    NONCE_BYTES,
    VERSION,
    DeductionNotice,
    ExitReceipt,
    HoldRequest,
    HoldVoucher,
    ShoppingList,
    Signed,
    open_signed,
    sign,
)
from gate.protocol.feed import Gs1Entry
from gate.protocol.keys import SigningKey, TrustedKeys, check_public_key, key_id
from gate.protocol.kiosk import ProposedList
from gate.protocol.parties import new_id
from phone.basket import Basket, Line
from phone.card import ExitCard
from phone.checks import HoldAsked, check_feed, check_notice, check_voucher
from phone.errors import Refused, ScanError, StateError
from phone.kiosk_card import KioskCard, OpenHold
from phone.ps import PaymentSystemClient
from phone.storage import KEY_FILE, StateDir

PROFILE = "profile.json"
CATALOG = "catalog.json"
CURRENT = "current.json"
PENDING_HOLD = "pending-hold.cbor"
PENDING_MAX_AGE_S = 240  # the PS accepts a request up to 300 s old; resend within that, else ask anew
MAX_FEED_PAGES = 1000
FINAL_VERDICTS = ("pass", "emergency")  # the shopper left: the visit is over
_GS1_TEXT = re.compile(r"(2[0-9]):(price|weight):([1-9]):([1-6])(:check)?")


@dataclass(frozen=True)
class Profile:
    """Who the shopper is at which store, and the keys the phone trusts there: the PS keys pinned at
    enrolment, and the gate keys and GS1 barcode layouts of the last feed signed by one of them (replaced
    at every sync)."""

    shopper: str
    bank_account: str | None
    ps_url: str
    store: str
    currency: str
    ps_keys: tuple[bytes, ...]
    gates: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    gs1: tuple[Gs1Layout, ...] = ()
    enrolled: int = 0

    def trusted_ps(self) -> TrustedKeys:
        return TrustedKeys(self.ps_keys)

    def trusted_gates(self) -> dict[str, TrustedKeys]:
        return {gate: TrustedKeys(keys) for gate, keys in self.gates.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "shopper": self.shopper,
            "bank_account": self.bank_account,
            "ps_url": self.ps_url,
            "store": self.store,
            "currency": self.currency,
            "ps_keys": [k.hex() for k in self.ps_keys],
            "gates": {g: [k.hex() for k in keys] for g, keys in sorted(self.gates.items())},
            "gs1": [gs1_text(layout) for layout in self.gs1],
            "enrolled": self.enrolled,
        }

    @classmethod
    def from_json(cls, value: Any) -> Profile:
        try:
            return cls(
                shopper=value["shopper"],
                bank_account=value["bank_account"],
                ps_url=value["ps_url"],
                store=value["store"],
                currency=value["currency"],
                ps_keys=tuple(check_public_key(bytes.fromhex(k)) for k in value["ps_keys"]),
                gates={
                    g: tuple(check_public_key(bytes.fromhex(k)) for k in keys)
                    for g, keys in value["gates"].items()
                },
                gs1=tuple(parse_gs1(text) for text in value["gs1"]),
                enrolled=value["enrolled"],
            )
        except (KeyError, TypeError, ValueError, AttributeError, SignatureError) as exc:
            raise StateError(f"{PROFILE} is unreadable: {exc}") from exc


def parse_gs1(text: str) -> Gs1Layout:
    """A GS1 layout as the profile keeps it: PREFIX:KIND:ITEM_DIGITS:VALUE_DIGITS[:check]."""
    m = _GS1_TEXT.fullmatch(text.strip())
    if not m:
        raise ValueError(
            f"{text!r} is not PREFIX:price|weight:ITEM_DIGITS:VALUE_DIGITS[:check], e.g. 21:weight:5:5"
        )
    layout = Gs1Layout(
        prefix=m[1], kind=m[2], item_digits=int(m[3]), value_digits=int(m[4]), value_check_digit=bool(m[5])
    )
    if 2 + layout.item_digits + (1 if layout.value_check_digit else 0) + layout.value_digits + 1 != 13:
        raise ValueError(f"{text!r}: prefix, item, value and check digits do not add up to an EAN-13")
    return layout


def _layout(entry: Gs1Entry) -> Gs1Layout:
    return Gs1Layout(
        prefix=entry.prefix,
        kind=entry.kind,
        item_digits=entry.item_digits,
        value_digits=entry.value_digits,
        value_check_digit=bool(entry.value_check_digit),
    )


def gs1_text(layout: Gs1Layout) -> str:
    check = ":check" if layout.value_check_digit else ""
    return f"{layout.prefix}:{layout.kind}:{layout.item_digits}:{layout.value_digits}{check}"


@dataclass(frozen=True)
class Visit:
    """One hold and everything made against it, as stored in visits/<hold hex>/."""

    voucher: Signed[HoldVoucher]
    basket: Basket
    signed_list: Signed[ShoppingList] | None = None
    receipt: Signed[ExitReceipt] | None = None
    notice: Signed[DeductionNotice] | None = None

    @property
    def hold(self) -> bytes:
        return self.voucher.doc.hold

    @property
    def folder(self) -> str:
        return f"visits/{self.hold.hex()}"

    @property
    def left(self) -> bool:
        """The gate let the shopper out with this visit's list: it is final and will be charged."""
        return self.receipt is not None and self.receipt.doc.verdict in FINAL_VERDICTS


@dataclass(frozen=True)
class ScanResult:
    """What the screen shows after a scan: the line, and the running total against the hold (claim 4)."""

    line: Line
    product: Product
    total: int
    hold_amount: int
    currency: str

    @property
    def remaining(self) -> int:
        """What is left of the hold; negative when the list is over it (the gate would deny)."""
        return self.hold_amount - self.total

    @property
    def over(self) -> bool:
        return self.total > self.hold_amount


@dataclass(frozen=True)
class SyncResult:
    catalog_version: int
    products: int
    price_changes: int
    gates: tuple[str, ...]


class Phone:
    """A shopper's phone on a state folder. Each method is one step an app's screen performs."""

    def __init__(
        self,
        state: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.state = StateDir(state)
        self._clock = clock
        self._session = session
        self._timeout_s = timeout_s
        self._key: SigningKey | None = None

    @classmethod
    def init(cls, state: str | os.PathLike[str], **kwargs: Any) -> Phone:
        """Create the state folder and the shopper's key pair; refuse to replace an existing key."""
        phone = cls(state, **kwargs)
        if phone.state.exists(KEY_FILE):
            raise StateError(f"{phone.state.path}: already has a shopper key ({phone.key.key_id})")
        phone.state.create()
        phone.state.write_secret_key(SigningKey.generate())
        return phone

    # -- who we are ---------------------------------------------------------------------------------------

    @property
    def key(self) -> SigningKey:
        if self._key is None:
            self._key = self.state.read_secret_key()
        return self._key

    @property
    def key_id(self) -> str:
        return self.key.key_id

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    @property
    def profile(self) -> Profile:
        value = self.state.read_json(PROFILE)
        if value is None:
            raise StateError("not enrolled with a store: run `selfcheckout phone enrol` first")
        return Profile.from_json(value)

    def now(self) -> int:
        return int(self._clock())

    def _ps(self, url: str | None = None) -> PaymentSystemClient:
        return PaymentSystemClient(
            url or self.profile.ps_url, session=self._session, timeout_s=self._timeout_s
        )

    # -- enrolment ----------------------------------------------------------------------------------------

    def enrol(
        self,
        ps_url: str,
        shopper: str,
        bank_account: str | None = None,
        *,
        token: str | None = None,
        ps_key_id: str | None = None,
    ) -> Profile:
        """Bind this phone's key to the user name (and bank account) at the store's payment system, pin the
        keys it signs with, and sync: the catalog, the store's gate keys and its GS1 layouts come in its
        signed feed.

        `token` authorises the enrolment (the reference PS takes its admin token; a store's account service
        gives one at login) and is used for nothing else; without it the store is taken to have enrolled
        this key already. `ps_key_id` is the PS key fingerprint printed in the store: with it, the phone pins
        nothing else.
        """
        public_key = self.public_key
        with self._ps(ps_url) as ps:
            health = ps.health()
            keys = ps.keys()
            store, currency = health.get("store"), health.get("currency")
            if not isinstance(store, str) or not isinstance(currency, str) or keys.get("store") != store:
                raise Refused("payment system refused: its health and keys answers name no single store")
            ps_keys = _pin_ps_keys(keys, ps_key_id)
            if token:
                view = ps.enrol(shopper, public_key, bank_account, token)
                if view.get("key_id") != key_id(public_key):
                    raise Refused(f"enrolment refused: the PS bound key {view.get('key_id')}, not ours")
            profile = Profile(
                shopper=shopper,
                bank_account=bank_account,
                ps_url=ps.url,
                store=store,
                currency=currency,
                ps_keys=ps_keys,
                enrolled=self.now(),
            )
        old = Profile.from_json(self.state.read_json(PROFILE)) if self.state.exists(PROFILE) else None
        if old is not None and (old.store, old.ps_url) == (profile.store, profile.ps_url):
            # Enrolling again at the same store (to re-pin its keys): keep the gate keys until the sync.
            profile = replace(profile, gates=old.gates, gs1=old.gs1)
        else:
            self.state.remove(CATALOG)  # another store: never a mix of two stores' prices
        self.state.create()
        self.state.write_json(PROFILE, profile.to_json())
        self.sync()
        return self.profile  # with the gate keys the sync pinned

    def sync(self) -> SyncResult:
        """Bring the catalog and the store's gate keys up to date from the PS's signed feed.

        Every page is verified (a pinned PS key, this store, our fresh nonce, our version) before anything
        is written. The gate keys are the whole list on every page: the last page's replace the pinned
        ones, so a revoked gate's receipts are refused from now on; the GS1 layouts too, so labels are split
        as the store's gates split them. No token and no unsigned answer.
        """
        profile = self.profile
        cached = self.state.read_json(CATALOG) or {"version": 0, "prices": []}
        version, rows = cached["version"], list(cached["prices"])
        changes = 0
        gates, gs1 = profile.gates, profile.gs1
        with self._ps() as ps:
            for _ in range(MAX_FEED_PAGES):
                nonce = os.urandom(NONCE_BYTES)
                raw, _, _ = ps.feed(version, nonce)
                page = check_feed(
                    raw, profile.trusted_ps(), store=profile.store, nonce=nonce, since=version
                ).doc
                for entry in page.prices:
                    rows.append(entry.to_map())
                    changes += 1
                gates = page.gate_keys()
                gs1 = tuple(_layout(entry) for entry in page.gs1)
                if page.version >= page.latest:
                    version = page.version
                    break
                if page.version <= version:
                    raise Refused(f"store feed refused: page from {version} does not move on")
                version = page.version
            else:
                raise Refused(f"store feed refused: more than {MAX_FEED_PAGES} pages")
        _catalog(rows)  # refuses a malformed entry before anything is written
        self.state.write_json(CATALOG, {"version": version, "prices": rows, "synced": self.now()})
        if (gates, gs1) != (profile.gates, profile.gs1):
            self.state.write_json(PROFILE, replace(profile, gates=gates, gs1=gs1).to_json())
        return SyncResult(version, len(_codes(rows)), changes, tuple(sorted(gates)))

    def catalog(self) -> MemoryCatalog:
        cached = self.state.read_json(CATALOG)
        if cached is None:
            raise StateError("no catalog yet: run `selfcheckout phone sync`")
        try:
            return _catalog(cached["prices"])
        except (KeyError, TypeError, Refused) as exc:
            raise StateError(f"{CATALOG} is unreadable: {exc}") from exc

    # -- claim 3: the hold --------------------------------------------------------------------------------

    def request_hold(self, estimate: int, *, replace_open: bool = False) -> HoldVoucher:
        """Ask the PS to hold the shopper's own estimate (minor units) for this visit; verify the voucher."""
        profile = self.profile
        current = self.visit()
        basket = Basket(profile.currency)
        if current is not None and not current.left:
            expired = current.voucher.doc.expires <= self.now()
            if not expired and not replace_open:
                open_amount = format_amount(current.voucher.doc.amount, current.voucher.doc.currency)
                raise StateError(
                    f"a hold of {open_amount} is open until {current.voucher.doc.expires}: "
                    "shop with it, or ask again with --replace"
                )
            basket = current.basket  # still shopping: the goods come along to the new hold
        request = self._hold_request(profile, estimate)
        with self._ps() as ps:
            raw = ps.place_hold(request.encode())
        asked = HoldAsked(
            shopper=profile.shopper,
            shopper_key=self.public_key,
            store=profile.store,
            currency=profile.currency,
            amount=estimate,
            now=self.now(),
        )
        voucher = check_voucher(raw, profile.trusted_ps(), asked)
        visit = Visit(voucher=voucher, basket=basket)
        self.state.write_bytes(f"{visit.folder}/voucher.cbor", voucher.encode())
        self.state.write_json(f"{visit.folder}/basket.json", basket.to_json())
        self.state.write_json(CURRENT, {"hold": visit.hold.hex()})
        self.state.remove(PENDING_HOLD)
        return voucher.doc

    def _hold_request(self, profile: Profile, estimate: int) -> Signed[HoldRequest]:
        """The signed request; one sent before and never answered is sent again as it is (same id)."""
        pending = self.state.read_bytes(PENDING_HOLD)
        if pending is not None:
            try:
                old = open_signed(pending, HoldRequest)
            except ProtocolError:
                old = None
            if (
                old is not None
                and old.doc.estimate == estimate
                and old.doc.store == profile.store
                and old.doc.shopper == profile.shopper
                and old.kid == self.key_id
                and 0 <= self.now() - old.doc.at <= PENDING_MAX_AGE_S
            ):
                return old
        doc = HoldRequest(
            v=VERSION,
            request=new_id(),
            shopper=profile.shopper,
            store=profile.store,
            currency=profile.currency,
            estimate=estimate,
            at=self.now(),
        )
        request = sign(HoldRequest.decode(doc.encode()), self.key)
        self.state.write_bytes(PENDING_HOLD, request.encode())
        return request

    # -- the visit ----------------------------------------------------------------------------------------

    def visit(self, hold: bytes | None = None) -> Visit | None:
        """The visit in progress (or the one of `hold`), None if there is none."""
        if hold is None:
            current = self.state.read_json(CURRENT)
            if current is None:
                return None
            try:
                hold = bytes.fromhex(current["hold"])
            except (KeyError, TypeError, ValueError) as exc:
                raise StateError(f"{CURRENT} is unreadable: {exc}") from exc
        folder = f"visits/{hold.hex()}"
        raw_voucher = self.state.read_bytes(f"{folder}/voucher.cbor")
        if raw_voucher is None:
            return None
        try:
            return Visit(
                voucher=open_signed(raw_voucher, HoldVoucher),
                basket=Basket.from_json(self.state.read_json(f"{folder}/basket.json")),
                signed_list=self._load(f"{folder}/list.cbor", ShoppingList),
                receipt=self._load(f"{folder}/receipt.cbor", ExitReceipt),
                notice=self._load(f"{folder}/notice.cbor", DeductionNotice),
            )
        except ProtocolError as exc:
            raise StateError(f"{folder} is unreadable: {exc}") from exc

    def visits(self) -> list[Visit]:
        """Every visit in the state folder, oldest hold first (in the order the vouchers were stored)."""
        vouchers = sorted(
            (self.state.path / "visits").glob("*/voucher.cbor"), key=lambda p: (p.stat().st_mtime_ns, p.name)
        )
        found = (self.visit(bytes.fromhex(path.parent.name)) for path in vouchers)
        return [visit for visit in found if visit is not None]

    def _load(self, name: str, doc_class: type[Any]) -> Any:
        raw = self.state.read_bytes(name)
        return None if raw is None else open_signed(raw, doc_class)

    def _shopping(self) -> Visit:
        visit = self.visit()
        if visit is None:
            raise StateError("no hold yet: run `selfcheckout phone hold --estimate AMOUNT` first")
        if visit.left:
            raise StateError("this visit is over (the gate let you out): ask for a new hold to shop again")
        return visit

    # -- claim 4: building the list ------------------------------------------------------------------------

    def scan(self, scanned: str, qty: int = 1) -> ScanResult:
        """Read one item: check the barcode, price it from the store's catalog, add it to the basket."""
        visit = self._shopping()
        profile = self.profile
        if not 1 <= qty <= 10_000:
            raise ScanError(f"quantity {qty} is not 1..10000")
        try:
            code = parse_scan(scanned).code
            resolved = resolve(code, {layout.prefix: layout for layout in profile.gs1})
        except BarcodeError as exc:
            raise ScanError(str(exc)) from exc
        products = self.catalog().products(
            {resolved.key}, now=self.now(), grace_s=0, currency=profile.currency
        )
        product = products.get(resolved.key)
        if product is None or product.current_price() is None:
            raise ScanError(f"{code} is not in the store's catalog (run `selfcheckout phone sync`)")
        price = product.current_price()
        assert price is not None
        measure = resolved.measure
        if measure is not None and measure.value == 0:
            raise ScanError(f"{code}: the label carries no {measure.kind}: scan the label the scale printed")
        if measure is not None and measure.kind == "price":
            line = Line(code=code, name=product.name, qty=qty, unit_price=measure.value)
        elif measure is not None:
            if product.unit != "kg":
                raise ScanError(f"{code}: {product.name} is not sold by weight")
            line = Line(code=code, name=product.name, qty=qty, unit_price=price, grams=measure.value)
        elif product.unit == "kg":
            raise ScanError(f"{code}: {product.name} is sold by weight: scan the label the scale printed")
        else:
            line = Line(code=code, name=product.name, qty=qty, unit_price=price)
        basket = visit.basket.add(line)
        self._save_basket(visit, basket)
        return ScanResult(line, product, basket.total, visit.voucher.doc.amount, profile.currency)

    def remove(self, code: str, qty: int = 1) -> Basket:
        """Take pieces back out of the basket (the last line with this code)."""
        visit = self._shopping()
        basket = visit.basket.remove(code, qty)
        self._save_basket(visit, basket)
        return basket

    def _save_basket(self, visit: Visit, basket: Basket) -> None:
        # A changed basket voids the signature: drop the signed list first, so that a crash in between
        # leaves an unsigned basket, never a signed list that is not the basket.
        self.state.remove(f"{visit.folder}/list.cbor")
        self.state.write_json(f"{visit.folder}/basket.json", basket.to_json())

    # -- claim 2: confirm and sign -------------------------------------------------------------------------

    def ready_to_sign(self) -> Visit:
        """The visit whose basket can be signed now; StateError saying why not (empty, over, expired)."""
        visit = self._shopping()
        voucher = visit.voucher.doc
        if not visit.basket.lines:
            raise StateError("the list is empty: scan something first")
        if voucher.expires <= self.now():
            raise StateError("the hold has expired: ask for a new one (`phone hold --replace`), then confirm")
        if visit.basket.total > voucher.amount:
            total, amount = (format_amount(a, voucher.currency) for a in (visit.basket.total, voucher.amount))
            raise StateError(
                f"the total {total} is over the hold of {amount}: remove something or ask for more"
            )
        return visit

    def confirm(self) -> Signed[ShoppingList]:
        """Sign the basket as the shopping list with the shopper's key, against the visit's hold."""
        visit = self.ready_to_sign()
        voucher = visit.voucher.doc
        now = self.now()
        doc = visit.basket.shopping_list(hold=voucher.hold, store=voucher.store, created=now)
        signed = sign(doc, self.key)
        if visit.receipt is not None:
            self.state.remove(f"{visit.folder}/receipt.cbor")  # it answered the list this one replaces
        self.state.write_bytes(f"{visit.folder}/list.cbor", signed.encode())
        return signed

    # -- claim 1 steps 2-3: the tap ------------------------------------------------------------------------

    def card(self) -> ExitCard:
        """The NFC service for the next tap: presents the signed list, verifies and keeps the receipt."""
        visit = self.visit()
        if visit is None or visit.signed_list is None:
            raise StateError("no signed list: run `selfcheckout phone confirm` first")
        folder = visit.folder
        presented = visit.signed_list.encode()

        def keep(receipt: Signed[ExitReceipt]) -> None:
            if self.state.read_bytes(f"{folder}/list.cbor") != presented:
                raise StateError("the list changed while the phone was on the gate")
            self.state.write_bytes(f"{folder}/receipt.cbor", receipt.encode())

        return ExitCard(
            self.key, visit.voucher, visit.signed_list, self.profile.trusted_gates(), on_receipt=keep
        )

    def tap(self, *, host: str = "127.0.0.1", port: int = 35963, timeout_s: float = 30.0) -> ExitReceipt:
        """Hold the phone on a PC/SC reader (vpcd) until the gate's receipt came, and verify it."""
        from drivers.virtual_card import VirtualCard

        card = self.card()
        virtual = VirtualCard(card, host=host, port=port)
        virtual.insert(timeout_s=min(timeout_s, 2.0))
        try:
            got = card.wait(timeout_s)
        finally:
            virtual.lift_once_answered()
        if not got or card.receipt is None:
            why = f": {card.refused}" if card.refused else ""
            raise StateError(f"no exit receipt from a gate within {timeout_s:g} s{why}")
        return card.receipt.doc

    # -- claims 2 and 4 at a kiosk: the kiosk proposes, the shopper confirms here -------------------------

    def kiosk_card(self) -> KioskCard:
        """The NFC service for a kiosk: shows it the open hold, and signs its list once the shopper confirms.

        The signed list replaces the visit's basket and list, exactly as `confirm` would have made them, so
        the next tap at the gate presents it.
        """

        def open_hold() -> OpenHold | None:
            visit = self.visit()
            return None if visit is None else OpenHold(visit.voucher, visit.left)

        def keep(proposal: ProposedList, signed: Signed[ShoppingList]) -> None:
            visit = self._shopping()
            if visit.hold != proposal.hold:
                raise StateError("the hold changed while the kiosk's list was on the screen")
            basket = Basket(visit.basket.currency, tuple(self.kiosk_lines(proposal)))
            self._save_basket(visit, basket)
            if visit.receipt is not None:
                self.state.remove(f"{visit.folder}/receipt.cbor")
            self.state.write_bytes(f"{visit.folder}/list.cbor", signed.encode())

        return KioskCard(self.key, open_hold, keep=keep, clock=self._clock)

    def kiosk_lines(self, proposal: ProposedList) -> list[Line]:
        """A kiosk's proposal as the phone shows it: names from the phone's own catalog, never the kiosk's
        word (a code the phone does not know is shown as the code)."""
        layouts = {layout.prefix: layout for layout in self.profile.gs1}
        keys = {}
        for entry in proposal.items:
            try:
                keys[entry.code] = resolve(entry.code, layouts).key
            except BarcodeError:
                keys[entry.code] = entry.code
        try:
            products = self.catalog().products(
                set(keys.values()), now=self.now(), grace_s=0, currency=proposal.currency
            )
        except StateError:
            products = {}
        lines = []
        for entry in proposal.items:
            product = products.get(keys[entry.code])
            name = product.name if product is not None else entry.code
            lines.append(Line(entry.code, name, entry.qty, entry.unit_price, entry.grams))
        return lines

    # -- claim 1 step 4: the deduction notice --------------------------------------------------------------

    def fetch_notice(self, list_id: bytes | None = None) -> DeductionNotice | None:
        """Fetch and verify the deduction notice of the last exit (or of `list_id`); None until settled."""
        visit = self._visit_for_notice(list_id)
        assert visit.signed_list is not None
        if visit.notice is not None:
            return visit.notice.doc
        with self._ps() as ps:
            raw = ps.notice(
                visit.signed_list.doc.list,
                store=self.profile.store,
                shopper=self.profile.shopper,
                key=self.key,
            )
        if raw is None:
            return None
        notice = check_notice(raw, self.profile.trusted_ps(), visit.voucher.doc, visit.signed_list.doc)
        self.state.write_bytes(f"{visit.folder}/notice.cbor", notice.encode())
        return notice.doc

    def _visit_for_notice(self, list_id: bytes | None) -> Visit:
        candidates: Iterable[Visit] = reversed(self.visits())
        for visit in candidates:
            if visit.signed_list is None or not visit.left:
                continue
            if list_id is None or visit.signed_list.doc.list == list_id:
                return visit
        if list_id is not None:
            raise StateError(f"no exit with list {list_id.hex()} in this phone")
        raise StateError("no exit yet: the notice comes after the gate let you out")


def _pin_ps_keys(answer: dict[str, Any], expected_kid: str | None) -> tuple[bytes, ...]:
    listed = answer.get("keys")
    if not isinstance(listed, list) or not listed:
        raise Refused("payment system keys refused: no keys listed")
    keys = []
    for entry in listed:
        try:
            key = check_public_key(bytes.fromhex(entry["public_key"]))
        except (KeyError, TypeError, ValueError, SignatureError) as exc:
            raise Refused(f"payment system keys refused: {str(entry)[:80]}: {exc}") from exc
        if entry.get("key_id") != key_id(key):
            raise Refused(f"payment system keys refused: key id {entry.get('key_id')} does not match its key")
        keys.append(key)
    if expected_kid is not None:
        keys = [k for k in keys if key_id(k) == expected_kid]
        if not keys:
            raise Refused(f"payment system keys refused: none has the key id {expected_kid} you were given")
    return tuple(keys)


def _codes(rows: Iterable[dict[str, Any]]) -> set[str]:
    return {PriceChange(**row).checked().code for row in rows}


def _catalog(rows: Iterable[dict[str, Any]]) -> MemoryCatalog:
    """The cached price rows as a catalog; Refused naming a malformed row (checked before it is stored)."""
    catalog = MemoryCatalog()
    try:
        for row in rows:
            catalog.add(PriceChange(**row))
    except (CatalogError, TypeError) as exc:
        raise Refused(f"catalog refused: {exc}") from exc
    return catalog
