"""The reason codes of the legality check: stable, machine-readable, each with the rule it stands for.

The codes travel in exit receipts, decision events and the panel; a phone app keys its messages on them.
Never rename or reuse one: add a new code instead. docs/protocol.md has the same table (a test keeps them
in step).

A code of kind "deny" refuses the exit. A code of kind "attendant" does not make the list illegal: it sends
the shopper to an attendant ("see attendant"), who approves the exit or not. The verdict is "deny" if any
deny code applies, else "attendant" if any attendant code applies, else "pass".
"""

from __future__ import annotations

from dataclasses import dataclass

DENY = "deny"
ATTENDANT = "attendant"


@dataclass(frozen=True)
class Rule:
    """A rule: its code, whether it denies or calls staff, what it checks (for the technician), and one
    plain sentence (`text`) that the panel, the demo, the phone and the docs all show for the code."""

    code: str
    kind: str
    rule: str
    text: str


RULES: tuple[Rule, ...] = (
    Rule(
        "malformed",
        DENY,
        "the presentation is one canonical, well-formed document (else nothing more)",
        text="The gate could not read what the phone sent. Tap again; if it repeats, ask staff.",
    ),
    Rule(
        "voucher_signature",
        DENY,
        "the hold voucher is signed by a trusted payment-system key",
        text="The gate does not recognise your hold. Ask for a new hold and confirm again.",
    ),
    Rule(
        "voucher_expired",
        DENY,
        "now is not after the voucher's `expires`",
        text="Your hold has expired. Ask for a new hold and confirm the list again.",
    ),
    Rule(
        "voucher_not_yet_valid",
        DENY,
        "the voucher's `issued` is not later than now + clock skew",
        text="Your hold is not valid yet: the phone's or the gate's clock is wrong.",
    ),
    Rule(
        "voucher_wrong_store",
        DENY,
        "the voucher is for this store",
        text="Your hold is for another store.",
    ),
    Rule(
        "voucher_wrong_currency",
        DENY,
        "the voucher is in the lane's currency",
        text="Your hold is in another currency than this store's.",
    ),
    Rule(
        "list_signature",
        DENY,
        "the list is signed by the voucher's shopper key",
        text="The list is not signed with the key your hold names. Confirm the list again.",
    ),
    Rule(
        "list_wrong_hold",
        DENY,
        "the list's hold id is the voucher's hold id",
        text="The list was made for another hold. Confirm the list again.",
    ),
    Rule("list_wrong_store", DENY, "the list is for this store", text="The list is for another store."),
    Rule(
        "list_wrong_currency",
        DENY,
        "the list is in the lane's currency",
        text="The list is in another currency than this store's.",
    ),
    Rule(
        "list_stale",
        DENY,
        "the list was created no longer than policy.max_list_age_s ago",
        text="The list was confirmed too long ago. Confirm it again.",
    ),
    Rule(
        "list_from_future",
        DENY,
        "the list's `created` is not later than now + clock skew",
        text="The list is dated in the future: check the phone's clock.",
    ),
    Rule(
        "answer_signature",
        DENY,
        "the challenge answer is signed by the voucher's shopper key",
        text="The phone's answer to the gate did not verify. Tap again.",
    ),
    Rule(
        "answer_wrong_gate",
        DENY,
        "the answer names this gate",
        text="The phone answered another gate. Tap again.",
    ),
    Rule(
        "answer_wrong_nonce",
        DENY,
        "the answer carries the nonce of the challenge this gate just sent",
        text="The phone's answer was not for this tap. Tap again.",
    ),
    Rule(
        "answer_wrong_list",
        DENY,
        "the answer carries the SHA-256 of the presented list's body bytes",
        text="The phone's answer was for another list. Tap again.",
    ),
    Rule(
        "total_mismatch",
        DENY,
        "the list's total is the sum of its line totals",
        text="The list's total is not the sum of its lines. Confirm the list again.",
    ),
    Rule(
        "over_guarantee",
        DENY,
        "the total is at most the voucher's guaranteed amount",
        text="The total is more than your hold. Remove something or ask for a larger hold.",
    ),
    Rule(
        "invalid_code",
        DENY,
        "every code is a valid EAN/UPC/GTIN (check digits, GS1 price check digit)",
        text="A barcode in the list is not valid. Remove it and scan it again.",
    ),
    Rule(
        "unknown_item",
        DENY,
        "every code (or GS1 base code) is in the gate's catalog",
        text="An item is not in this store's catalog. Remove it or ask staff.",
    ),
    Rule(
        "price_mismatch",
        DENY,
        "every unit price is a catalog price valid within policy.price_grace_s (price codes: the one in it)",
        text="A price has changed. Refresh the catalog, scan the item again and confirm.",
    ),
    Rule(
        "weight_mismatch",
        DENY,
        "weighed lines carry grams (as embedded in a weight code), others none",
        text="A weighed item does not match its label. Scan the label the scale printed.",
    ),
    Rule(
        "too_many_items",
        DENY,
        "the list has at most policy.max_items lines",
        text="The list has more lines than the store allows at the gate. Ask staff.",
    ),
    Rule(
        "quantity_limit",
        DENY,
        "no line has a quantity over policy.max_quantity",
        text="A line has more pieces than the store allows at the gate. Ask staff.",
    ),
    Rule(
        "list_used",
        DENY,
        "the list id was never used before at this gate",
        text="This list was already used to leave. Start a new visit for new goods.",
    ),
    Rule(
        "hold_consumed",
        DENY,
        "the hold was not consumed by another list, here or (once synced) at another gate",
        text="Your hold was already used for another exit. Ask for a new hold.",
    ),
    Rule(
        "hold_denied",
        DENY,
        "the hold is not on the payment system's deny list",
        text="Your hold is blocked by the store. Ask staff.",
    ),
    Rule(
        "shopper_denied",
        DENY,
        "the shopper is not on the payment system's deny list",
        text="Your account is blocked, for example by an unpaid charge. Top up or ask staff.",
    ),
    Rule(
        "offline_limit",
        DENY,
        "the unsettled charge backlog is under offline.max_count and "
        "offline.max_amount, and its oldest charge is not older than offline.max_age_s",
        text="The gate cannot reach the store's payment system for now. Please see staff.",
    ),
    Rule(
        "clock_unsynced",
        DENY,
        "the gate knows the time: its clock is synchronised, or a synchronisation was seen since it booted "
        "(then the time is that one plus the time elapsed since, on a clock that is never stepped); only "
        "with policy.require_synced_clock",
        text="The gate cannot tell the time for now. Please see staff.",
    ),
    Rule(
        "attendant_item",
        ATTENDANT,
        "no item's catalog category is in policy.attendant_categories",
        text="An item needs a check by staff (age-restricted or security-tagged).",
    ),
    Rule(
        "label_implausible",
        ATTENDANT,
        "every weight or price a GS1 label embeds is within its product's plausible bounds in the catalog",
        text="A weight or price label looks unusual: staff will check the item with you.",
    ),
    Rule(
        "audit",
        ATTENDANT,
        "the list is not drawn for a random attendant audit (policy.audit_per_mille), nor asked for by the "
        "attendant at the lane",
        text="You were chosen for a random check. Thank you for your patience.",
    ),
)

BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}
UNKNOWN_TEXT = "A rule this gate does not know applied."
ORDER: dict[str, int] = {r.code: i for i, r in enumerate(RULES)}
ATTENDANT_CODES = frozenset(r.code for r in RULES if r.kind == ATTENDANT)


@dataclass(frozen=True)
class Reason:
    """One rule that applied: its stable code and a sentence for the panel and the technician."""

    code: str
    message: str

    @property
    def kind(self) -> str:
        return BY_CODE[self.code].kind


def text_of(code: str) -> str:
    """The one human sentence for a reason code (a code from a newer gate gets a sentence too)."""
    rule = BY_CODE.get(code)
    return rule.text if rule else UNKNOWN_TEXT


def verdict_of(codes: set[str] | frozenset[str]) -> str:
    if any(BY_CODE[c].kind == DENY for c in codes):
        return "deny"
    if codes:
        return "attendant"
    return "pass"
