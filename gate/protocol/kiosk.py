"""The kiosk exchange: a kiosk reads the shopper's hold, proposes a list, and gets it back signed.

The kiosk holds no shopper key and no money. It helps the shopper build a list; the shopper's own phone
shows that list, the shopper confirms it there, and the phone signs it with the shopper key (claims 2 and
4). Two taps on the kiosk's reader, over the same NFC transport and AID as the gate (docs/protocol.md
section 12):

- first tap, INS_KIOSK_HOLD: the kiosk sends a `KioskHello` (its id, its store, a fresh session id); the
  phone answers its hold voucher, the envelope the payment system signed (nothing secret: every gate sees
  it too), or `SW_NO_HOLD`. The kiosk verifies it and shows the store, currency, amount and expiry.
- second tap, INS_KIOSK_PROPOSE then INS_KIOSK_RESULT: the kiosk sends the unsigned `ProposedList`; the
  phone checks it against its hold and shows it ("shown"); the kiosk then asks for the result with a
  `KioskPoll` naming the SHA-256 of the proposal it sent, until the phone answers "signed" (with the
  signed list, which the kiosk verifies against the voucher's shopper key), "declined" or "refused".

The phone signs only the very bytes it showed: a poll naming another proposal, or another proposal in the
same session, is refused as `changed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gate.errors import DecodeError
from gate.protocol.documents import (
    _REASON,
    AMOUNT,
    CURRENCY,
    HASH,
    ID,
    MAX_LIST_ITEMS,
    NAME,
    TIME,
    Document,
    Item,
    ShoppingList,
    Signed,
    _list_of,
    _one_of,
    _text,
    _version,
    envelope,
)

INS_KIOSK_HOLD = 0x30  # data: KioskHello; response: the hold-voucher envelope, or SW_NO_HOLD
INS_KIOSK_PROPOSE = 0x31  # data: ProposedList; response: KioskReply ("shown" or "refused")
INS_KIOSK_RESULT = 0x32  # data: KioskPoll; response: KioskReply ("waiting", "signed", "declined", "refused")

SW_NO_HOLD = 0x6A88  # referenced data not found: this phone has no open hold to show

# Why a phone refuses a proposal; the kiosk shows one sentence per code (kiosk/texts.py).
REFUSALS = (
    "no_hold",  # the phone has no open hold (any more)
    "hold_expired",  # the hold expired before the shopper confirmed
    "wrong_store",  # the proposal is for another store than the hold's
    "wrong_hold",  # the proposal names another hold (another phone's, or an older visit)
    "wrong_currency",  # the proposal is in another currency than the hold's
    "over_hold",  # the total is over the hold's guaranteed amount
    "changed",  # the proposal is not the one the phone showed the shopper
    "visit_over",  # the phone already left the store with this hold
)
STATUSES = ("shown", "waiting", "signed", "declined", "refused")


@dataclass(frozen=True)
class KioskHello(Document):
    """Kiosk -> phone, first tap: who asks, for which store, and the session both taps belong to."""

    TYPE = "kiosk-hello"
    FIELDS = {"v": _version, "kiosk": NAME, "store": NAME, "session": ID, "time": TIME}
    v: int
    kiosk: str
    store: str
    session: bytes
    time: int


@dataclass(frozen=True)
class ProposedList(Document):
    """Kiosk -> phone, second tap: the lines the shopper scanned, unsigned. The phone chooses the list id
    and the time when the shopper confirms, and signs a `ShoppingList` with exactly these lines."""

    TYPE = "proposed-list"
    FIELDS = {
        "v": _version,
        "kiosk": NAME,
        "session": ID,
        "hold": ID,
        "store": NAME,
        "currency": CURRENCY,
        "items": _list_of(Item.from_map, minimum=1, maximum=MAX_LIST_ITEMS),
        "total": AMOUNT,
    }
    v: int
    kiosk: str
    session: bytes
    hold: bytes
    store: str
    currency: str
    items: tuple[Item, ...]
    total: int

    def check(self, where: str) -> None:
        lines = sum(item.line_total for item in self.items)
        if self.total != lines:
            raise DecodeError(f"{where}: total {self.total} != sum of line totals ({lines})")

    def differs_from(self, signed: ShoppingList) -> str | None:
        """The first thing a signed list has that this proposal does not say, or None if it is this one."""
        for name in ("hold", "store", "currency", "items", "total"):
            if getattr(signed, name) != getattr(self, name):
                return name
        return None


@dataclass(frozen=True)
class KioskPoll(Document):
    """Kiosk -> phone: "has the shopper confirmed the proposal with this hash?"."""

    TYPE = "kiosk-poll"
    FIELDS = {"v": _version, "session": ID, "proposal": HASH}
    v: int
    session: bytes
    proposal: bytes


@dataclass(frozen=True)
class KioskReply(Document):
    """Phone -> kiosk, to a proposal or a poll. `list` comes with "signed" only, `reason` with "refused"."""

    TYPE = "kiosk-reply"
    FIELDS = {
        "v": _version,
        "session": ID,
        "status": _one_of(*STATUSES),
        "reason": _text(_REASON, "a refusal code"),
        "list": envelope(ShoppingList),
    }
    OPTIONAL = frozenset({"reason", "list"})
    v: int
    session: bytes
    status: str
    reason: str | None = None
    list: Signed[ShoppingList] | None = None

    def check(self, where: str) -> None:
        if (self.status == "signed") != (self.list is not None):
            raise DecodeError(f"{where}: a signed list comes with status 'signed' and only then")
        if (self.status == "refused") != (self.reason is not None):
            raise DecodeError(f"{where}: a reason comes with status 'refused' and only then")
