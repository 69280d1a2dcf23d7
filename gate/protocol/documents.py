"""The protocol's documents, their shapes and limits, and the signed envelope they travel in.

A signed document is an envelope {t: type, k: key id, b: body bytes, s: signature}. The body is carried as
the exact canonical bytes that were signed, so a verifier never re-encodes before checking a signature,
and the signature also covers the type and key id, so a signature made for one kind of document can never
be passed off as another (docs/protocol.md, "What each signature covers").
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from gate.errors import DecodeError, SignatureError
from gate.protocol import encoding
from gate.protocol.keys import SIGNATURE_BYTES, SigningKey, check_public_key, key_id, verify

VERSION = 1
SIGNING_CONTEXT = "selfcheckout/1"
ID_BYTES = 16
NONCE_BYTES = 32
MAX_AMOUNT = 10**10  # minor units; far above any basket, far below 2**63
MAX_LIST_ITEMS = 1000  # hard limit of the format; the store's policy sets a lower one

_ID_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_CODE = re.compile(r"[0-9]{8}|[0-9]{12,14}")  # EAN-8, UPC-A, EAN-13, GTIN-14 (docs/protocol.md section 6)
_REASON = re.compile(r"[a-z][a-z0-9_]{0,39}")

Validator = Callable[[Any, str], Any]


def _uint(maximum: int = MAX_AMOUNT, minimum: int = 0) -> Validator:
    def check(value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise DecodeError(f"{where}: expected an integer, got {type(value).__name__}")
        if not minimum <= value <= maximum:
            raise DecodeError(f"{where}: {value} outside {minimum}..{maximum}")
        return value

    return check


def _text(pattern: re.Pattern[str], what: str) -> Validator:
    def check(value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise DecodeError(f"{where}: expected text ({what}), got {type(value).__name__}")
        if not pattern.fullmatch(value):
            raise DecodeError(f"{where}: {value[:80]!r} is not {what}")
        return value

    return check


def _blob(size: int) -> Validator:
    def check(value: Any, where: str) -> bytes:
        if not isinstance(value, bytes):
            raise DecodeError(f"{where}: expected {size} bytes, got {type(value).__name__}")
        if len(value) != size:
            raise DecodeError(f"{where}: expected {size} bytes, got {len(value)}")
        return value

    return check


def _public_key(value: Any, where: str) -> bytes:
    _blob(32)(value, where)
    try:
        return check_public_key(value)
    except SignatureError as exc:
        raise DecodeError(f"{where}: {exc}") from exc


def _list_of(item: Validator, *, minimum: int, maximum: int) -> Validator:
    def check(value: Any, where: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise DecodeError(f"{where}: expected a list, got {type(value).__name__}")
        if not minimum <= len(value) <= maximum:
            raise DecodeError(f"{where}: {len(value)} entries, expected {minimum}..{maximum}")
        return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))

    return check


def _one_of(*choices: str) -> Validator:
    def check(value: Any, where: str) -> str:
        if value not in choices:
            raise DecodeError(f"{where}: {value!r} is not one of {', '.join(choices)}")
        return value

    return check


def _version(value: Any, where: str) -> int:
    if value != VERSION:
        raise DecodeError(f"{where}: unsupported version {value!r} (this gate speaks {VERSION})")
    return value


ID = _blob(ID_BYTES)
NONCE = _blob(NONCE_BYTES)
HASH = _blob(32)
AMOUNT = _uint()
TIME = _uint(2**40)  # unix seconds
NAME = _text(_ID_TEXT, "an id of letters, digits, '.', '_' or '-' (1-64)")
CURRENCY = _text(_CURRENCY, "an ISO 4217 currency code")


class Document:
    """A body: a map of fixed keys. Subclasses are frozen dataclasses whose field names are the keys."""

    TYPE: ClassVar[str]
    FIELDS: ClassVar[dict[str, Validator]]
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    _FIELD_SET: ClassVar[frozenset[str]] = frozenset()
    _REQUIRED: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "FIELDS" in cls.__dict__:
            cls._FIELD_SET = frozenset(cls.FIELDS)
            cls._REQUIRED = cls._FIELD_SET - cls.OPTIONAL

    @classmethod
    def from_map(cls, value: Any, where: str = "") -> Any:
        where = where or cls.TYPE
        if type(value) is not dict:
            raise DecodeError(f"{where}: expected a map, got {type(value).__name__}")
        keys = value.keys()
        if keys - cls._FIELD_SET:
            raise DecodeError(f"{where}: unknown field {sorted(keys - cls._FIELD_SET)[0]!r}")
        if cls._REQUIRED - keys:
            raise DecodeError(f"{where}: missing field {sorted(cls._REQUIRED - keys)[0]!r}")
        fields = {}
        for name, check in cls.FIELDS.items():
            if name in value:
                fields[name] = check(value[name], f"{where}.{name}")
        doc = cls._build(fields)
        doc.check(where)
        return doc

    @classmethod
    def _build(cls, fields: dict[str, Any]) -> Any:
        """The instance, without dataclass __init__'s per-field object.__setattr__ when that is safe (plain
        defaults, no __post_init__): this runs once per list line on the gate's hot path."""
        absent = cls.__dict__.get("_absent_defaults")
        if absent is None:
            plain = not hasattr(cls, "__post_init__")
            absent = {}
            for f in dataclasses.fields(cls):  # type: ignore[arg-type]
                if not f.init or (f.name in cls.OPTIONAL and f.default is dataclasses.MISSING):
                    plain = False
                elif f.default is not dataclasses.MISSING:
                    absent[f.name] = f.default
            absent = absent if plain else False
            type.__setattr__(cls, "_absent_defaults", absent)
        if absent is False:
            return cls(**fields)
        doc = object.__new__(cls)
        doc.__dict__.update(absent)
        doc.__dict__.update(fields)
        return doc

    def check(self, where: str) -> None:
        """Rules that tie fields together; the shape itself is checked by FIELDS."""

    def to_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = _to_wire(value)
        return out

    def encode(self) -> bytes:
        """The document's deterministic bytes: those it was decoded from, when it was (the decoder refuses
        any other spelling, so they are the same bytes), else encoded from its fields."""
        data = self.__dict__.get("_encoded")
        return data if data is not None else encoding.encode(self.to_map())

    def hash(self) -> bytes:
        """SHA-256 of the document's bytes as sent: what an exit answer or a kiosk poll names.

        Kept on the (immutable) document once computed: a kiosk and a phone compare the same proposal's
        hash at every poll, and encoding a long list each time is the poll's whole cost.
        """
        digest = self.__dict__.get("_hash")
        if digest is None:
            digest = self.__dict__["_hash"] = hashlib.sha256(self.encode()).digest()
        return digest

    @classmethod
    def decode(cls, data: bytes) -> Any:
        return cls.from_map(encoding.decode(data))


def _to_wire(value: Any) -> Any:
    if isinstance(value, Document | Signed):
        return value.to_map()
    if isinstance(value, tuple | list):
        return [_to_wire(v) for v in value]
    return value


D = TypeVar("D", bound=Document)


@dataclass(frozen=True)
class Signed(Generic[D]):
    """A document with the signature over its exact bytes; parsing it does not mean it verified."""

    type: str
    kid: str
    body: bytes
    sig: bytes
    doc: D

    def to_map(self) -> dict[str, Any]:
        return {"b": self.body, "k": self.kid, "s": self.sig, "t": self.type}

    def encode(self) -> bytes:
        return encoding.encode(self.to_map())

    def verify_with(self, public_key: bytes) -> D:
        """Check the signature with this key; SignatureError if another key signed it or it fails."""
        if key_id(public_key) != self.kid:
            raise SignatureError(f"{self.type} is signed by key {self.kid}, not by {key_id(public_key)}")
        verify(public_key, signing_input(self.type, self.kid, self.body), self.sig)
        return self.doc


def signing_input(doc_type: str, kid: str, body: bytes) -> bytes:
    """The exact bytes an Ed25519 signature covers: the canonical CBOR array [context, type, kid, body]."""
    return encoding.encode([SIGNING_CONTEXT, doc_type, kid, body])


def sign(doc: D, key: SigningKey) -> Signed[D]:
    body = doc.encode()
    kid = key.key_id
    return Signed(doc.TYPE, kid, body, key.sign(signing_input(doc.TYPE, kid, body)), doc)


def envelope(doc_class: type[D]) -> Validator:
    """A validator for a nested signed envelope holding a doc_class body.

    Inside a document an envelope is a CBOR map, never a byte string holding one: a second spelling of the
    same content would give one presentation or charge two encodings (docs/protocol.md section 3).
    """

    def check(value: Any, where: str) -> Signed[D]:
        if type(value) is not dict:
            raise DecodeError(f"{where}: expected a signed envelope map, got {type(value).__name__}")
        return open_signed(value, doc_class, where)

    return check


_ENVELOPE_FIELDS: dict[str, Validator] = {
    "b": lambda v, w: v if isinstance(v, bytes) else _raise(f"{w}: expected bytes"),
    "k": _text(re.compile(r"[0-9a-f]{16}"), "a key id of 16 hex digits"),
    "s": _blob(SIGNATURE_BYTES),
    "t": _text(re.compile(r"[a-z][a-z-]{0,31}"), "a document type"),
}


def _raise(message: str) -> Any:
    raise DecodeError(message)


def open_signed(value: Any, doc_class: type[D], where: str = "") -> Signed[D]:
    """Parse an envelope (map or bytes) and its body; the signature is checked later by verify_with."""
    where = where or doc_class.TYPE
    if isinstance(value, bytes):
        value = encoding.decode(value)
    if not isinstance(value, dict):
        raise DecodeError(f"{where}: expected a signed envelope map, got {type(value).__name__}")
    if set(value) != set(_ENVELOPE_FIELDS):
        extra = sorted(set(value) ^ set(_ENVELOPE_FIELDS))
        raise DecodeError(f"{where}: envelope must have exactly b, k, s, t (differs at {extra[0]!r})")
    fields = {k: check(value[k], f"{where}.{k}") for k, check in _ENVELOPE_FIELDS.items()}
    if fields["t"] != doc_class.TYPE:
        raise DecodeError(f"{where}: expected a {doc_class.TYPE} document, got {fields['t']!r}")
    body_map = encoding.decode(fields["b"])
    doc = doc_class.from_map(body_map, where)
    doc.__dict__["_encoded"] = fields["b"]
    return Signed(fields["t"], fields["k"], fields["b"], fields["s"], doc)


# ---------------------------------------------------------------------------------------------------------
# The documents (docs/protocol.md has the same tables, with the reasons for each limit).


@dataclass(frozen=True)
class HoldVoucher(Document):
    """Payment system -> phone: money reserved for this visit (stored value plus a bank hold)."""

    TYPE = "hold-voucher"
    FIELDS = {
        "v": _version,
        "hold": ID,
        "shopper": NAME,
        "shopper_key": _public_key,
        "store": NAME,
        "currency": CURRENCY,
        "amount": AMOUNT,
        "stored_value": AMOUNT,
        "bank": AMOUNT,
        "issued": TIME,
        "expires": TIME,
    }
    v: int
    hold: bytes
    shopper: str
    shopper_key: bytes
    store: str
    currency: str
    amount: int
    stored_value: int
    bank: int
    issued: int
    expires: int

    def check(self, where: str) -> None:
        if self.amount != self.stored_value + self.bank:
            raise DecodeError(
                f"{where}: amount {self.amount} != stored_value + bank ({self.stored_value + self.bank})"
            )
        if self.expires <= self.issued:
            raise DecodeError(f"{where}: expires ({self.expires}) is not after issued ({self.issued})")


@dataclass(frozen=True)
class Item(Document):
    """One line of a list. Weighed goods carry grams and a price per kilogram; others a unit price."""

    TYPE = "item"
    FIELDS = {
        "code": _text(_CODE, "a barcode of 8, 12, 13 or 14 digits"),
        "qty": _uint(10_000, 1),
        "grams": _uint(10**6, 1),
        "unit_price": AMOUNT,
        "line_total": AMOUNT,
    }
    OPTIONAL = frozenset({"grams"})
    code: str
    qty: int
    unit_price: int
    line_total: int
    grams: int | None = None

    def check(self, where: str) -> None:
        expected = line_total(self.qty, self.unit_price, self.grams)
        if self.line_total != expected:
            raise DecodeError(f"{where}: line_total {self.line_total} != {expected}")


def line_total(qty: int, unit_price: int, grams: int | None) -> int:
    """Integer money: qty x unit price, or price per kg x grams / 1000 rounded half up."""
    if grams is None:
        return qty * unit_price
    return qty * ((unit_price * grams + 500) // 1000)


@dataclass(frozen=True)
class ShoppingList(Document):
    """Phone (or kiosk) -> signed by the shopper: what is being taken out, at which prices."""

    TYPE = "shopping-list"
    FIELDS = {
        "v": _version,
        "list": ID,
        "hold": ID,
        "store": NAME,
        "currency": CURRENCY,
        "created": TIME,
        "items": _list_of(Item.from_map, minimum=1, maximum=MAX_LIST_ITEMS),
        "total": AMOUNT,
    }
    v: int
    list: bytes
    hold: bytes
    store: str
    currency: str
    created: int
    items: tuple[Item, ...]
    total: int


@dataclass(frozen=True)
class ExitChallenge(Document):
    """Gate -> phone, fresh for every tap, so a recorded answer is useless at any gate and any time."""

    TYPE = "exit-challenge"
    FIELDS = {"v": _version, "gate": NAME, "store": NAME, "nonce": NONCE, "time": TIME}
    v: int
    gate: str
    store: str
    nonce: bytes
    time: int


@dataclass(frozen=True)
class ExitAnswer(Document):
    """Signed by the shopper: binds this gate's challenge to the exact list being presented."""

    TYPE = "exit-answer"
    FIELDS = {"v": _version, "gate": NAME, "nonce": NONCE, "list_hash": HASH}
    v: int
    gate: str
    nonce: bytes
    list_hash: bytes


@dataclass(frozen=True)
class ExitPresentation(Document):
    """Phone -> gate over NFC: voucher, signed list and the signed answer to the challenge."""

    TYPE = "exit-presentation"
    FIELDS = {
        "v": _version,
        "voucher": envelope(HoldVoucher),
        "list": envelope(ShoppingList),
        "answer": envelope(ExitAnswer),
    }
    v: int
    voucher: Signed[HoldVoucher]
    list: Signed[ShoppingList]
    answer: Signed[ExitAnswer]


VERDICTS = ("pass", "deny", "attendant", "emergency")


@dataclass(frozen=True)
class ExitReceipt(Document):
    """Gate -> phone, signed by the gate: the legality result with every reason (claim 1, step 3)."""

    TYPE = "exit-receipt"
    FIELDS = {
        "v": _version,
        "gate": NAME,
        "store": NAME,
        "list": ID,
        "nonce": NONCE,
        "verdict": _one_of(*VERDICTS),
        "reasons": _list_of(_text(_REASON, "a reason code"), minimum=0, maximum=64),
        "total": AMOUNT,
        "currency": CURRENCY,
        "at": TIME,
    }
    v: int
    gate: str
    store: str
    list: bytes
    nonce: bytes
    verdict: str
    reasons: tuple[str, ...]
    total: int
    currency: str
    at: int


@dataclass(frozen=True)
class Charge(Document):
    """Gate -> payment system, signed by the gate: the proof of exit. Its id is the list id, for ever."""

    TYPE = "charge"
    FIELDS = {
        "v": _version,
        "charge": ID,
        "gate": NAME,
        "store": NAME,
        "challenge": ExitChallenge.from_map,
        "voucher": envelope(HoldVoucher),
        "list": envelope(ShoppingList),
        "answer": envelope(ExitAnswer),
        "amount": AMOUNT,
        "currency": CURRENCY,
        "decided": TIME,
    }
    v: int
    charge: bytes
    gate: str
    store: str
    challenge: ExitChallenge
    voucher: Signed[HoldVoucher]
    list: Signed[ShoppingList]
    answer: Signed[ExitAnswer]
    amount: int
    currency: str
    decided: int

    def check(self, where: str) -> None:
        if self.charge != self.list.doc.list:
            raise DecodeError(f"{where}: charge id is not the list id")
        if self.amount != self.list.doc.total:
            raise DecodeError(f"{where}: amount {self.amount} != list total {self.list.doc.total}")


@dataclass(frozen=True)
class DeductionNotice(Document):
    """Payment system -> phone, signed: what was taken and from where (claim 1 step 4, claims 7-8)."""

    TYPE = "deduction-notice"
    FIELDS = {
        "v": _version,
        "charge": ID,
        "hold": ID,
        "shopper": NAME,
        "currency": CURRENCY,
        "total": AMOUNT,
        "stored_value": AMOUNT,
        "bank": AMOUNT,
        "bank_ref": _text(re.compile(r"[A-Za-z0-9._-]{0,64}"), "a bank reference"),
        "released": AMOUNT,
        "debt": AMOUNT,
        "settled": TIME,
    }
    v: int
    charge: bytes
    hold: bytes
    shopper: str
    currency: str
    total: int
    stored_value: int
    bank: int
    bank_ref: str
    released: int
    debt: int
    settled: int

    def check(self, where: str) -> None:
        if self.stored_value + self.bank + self.debt != self.total:
            raise DecodeError(f"{where}: stored_value + bank + debt != total")


CONFLICT = "charge_conflict"  # the refusal code of another body under a charge id the PS already took


@dataclass(frozen=True)
class ChargeRefusal(Document):
    """Payment system -> gate, signed: the charge with these exact bytes is refused for good, and why.

    Only a refusal that verifies with the payment system's key flags a charge at the gate: a 4xx from
    anything in between (a proxy, a captive portal) carries none, so the gate sends the charge again.
    """

    TYPE = "charge-refusal"
    FIELDS = {
        "v": _version,
        "store": NAME,
        "body_hash": HASH,
        "code": _text(_REASON, "a reason code"),
        "message": _text(re.compile(r"[ -~]{0,300}"), "printable text (0-300)"),
        "at": TIME,
        "won": HASH,
        "won_gate": NAME,
    }
    OPTIONAL = frozenset({"won", "won_gate"})
    v: int
    store: str
    body_hash: bytes
    code: str
    message: str
    at: int
    # A charge_conflict names the charge that won: the SHA-256 of the body the payment system took under
    # this id, and the gate that signed it. With them the refused copy is a settled fact (the list was
    # charged once), not a fault a technician could fix by sending it again.
    won: bytes | None = None
    won_gate: str | None = None

    def check(self, where: str) -> None:
        if (self.won is None) != (self.won_gate is None):
            raise DecodeError(f"{where}: won and won_gate come together")
        if self.won is not None and self.code != CONFLICT:
            raise DecodeError(f"{where}: only a {CONFLICT} names the charge that won")
        if self.won is not None and self.won == self.body_hash:
            raise DecodeError(f"{where}: the charge that won is the refused one")


@dataclass(frozen=True)
class HoldRequest(Document):
    """Phone -> payment system, signed by the shopper: their own estimate of this visit (claim 3)."""

    TYPE = "hold-request"
    FIELDS = {
        "v": _version,
        "request": ID,
        "shopper": NAME,
        "store": NAME,
        "currency": CURRENCY,
        "estimate": _uint(MAX_AMOUNT, 1),
        "at": TIME,
    }
    v: int
    request: bytes
    shopper: str
    store: str
    currency: str
    estimate: int
    at: int
