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
        text="The phone sent something the gate could not read.",
    ),
    Rule(
        "voucher_signature",
        DENY,
        "the hold voucher is signed by a trusted payment-system key",
        text="The payment guarantee is not signed by the store's payment system.",
    ),
    Rule(
        "voucher_expired",
        DENY,
        "now is not after the voucher's `expires`",
        text="The payment guarantee has expired.",
    ),
    Rule(
        "voucher_not_yet_valid",
        DENY,
        "the voucher's `issued` is not later than now + clock skew",
        text="The payment guarantee is dated in the future.",
    ),
    Rule(
        "voucher_wrong_store",
        DENY,
        "the voucher is for this store",
        text="The payment guarantee is for another store.",
    ),
    Rule(
        "voucher_wrong_currency",
        DENY,
        "the voucher is in the lane's currency",
        text="The payment guarantee is in another currency.",
    ),
    Rule(
        "list_signature",
        DENY,
        "the list is signed by the voucher's shopper key",
        text="The shopping list is not signed by the shopper's phone.",
    ),
    Rule(
        "list_wrong_hold",
        DENY,
        "the list's hold id is the voucher's hold id",
        text="The shopping list belongs to another payment guarantee.",
    ),
    Rule(
        "list_wrong_store", DENY, "the list is for this store", text="The shopping list is for another store."
    ),
    Rule(
        "list_wrong_currency",
        DENY,
        "the list is in the lane's currency",
        text="The shopping list is in another currency.",
    ),
    Rule(
        "list_stale",
        DENY,
        "the list was created no longer than policy.max_list_age_s ago",
        text="The shopping list is too old.",
    ),
    Rule(
        "list_from_future",
        DENY,
        "the list's `created` is not later than now + clock skew",
        text="The shopping list is dated in the future.",
    ),
    Rule(
        "answer_signature",
        DENY,
        "the challenge answer is signed by the voucher's shopper key",
        text="The phone's answer to the gate is not signed by the shopper's phone.",
    ),
    Rule("answer_wrong_gate", DENY, "the answer names this gate", text="The phone answered another gate."),
    Rule(
        "answer_wrong_nonce",
        DENY,
        "the answer carries the nonce of the challenge this gate just sent",
        text="The phone answered an earlier tap, not this one.",
    ),
    Rule(
        "answer_wrong_list",
        DENY,
        "the answer carries the SHA-256 of the presented list's body bytes",
        text="The phone's answer does not match its shopping list.",
    ),
    Rule(
        "total_mismatch",
        DENY,
        "the list's total is the sum of its line totals",
        text="The list's total is not the sum of its lines.",
    ),
    Rule(
        "over_guarantee",
        DENY,
        "the total is at most the voucher's guaranteed amount",
        text="The total is more than the payment guarantee covers.",
    ),
    Rule(
        "invalid_code",
        DENY,
        "every code is a valid EAN/UPC/GTIN (check digits, GS1 price check digit)",
        text="A barcode on the list is not a valid product code.",
    ),
    Rule(
        "unknown_item",
        DENY,
        "every code (or GS1 base code) is in the gate's catalog",
        text="An item on the list is not sold in this store.",
    ),
    Rule(
        "price_mismatch",
        DENY,
        "every unit price is a catalog price valid within policy.price_grace_s (price codes: the one in it)",
        text="A price on the list is not the store's price.",
    ),
    Rule(
        "weight_mismatch",
        DENY,
        "weighed lines carry grams (as embedded in a weight code), others none",
        text="A weighed item's weight does not match its barcode.",
    ),
    Rule(
        "too_many_items",
        DENY,
        "the list has at most policy.max_items lines",
        text="The list has more lines than one exit allows.",
    ),
    Rule(
        "quantity_limit",
        DENY,
        "no line has a quantity over policy.max_quantity",
        text="An item's quantity is over the limit for one exit.",
    ),
    Rule(
        "list_used",
        DENY,
        "the list id was never used before at this gate",
        text="This shopping list has already been used to leave.",
    ),
    Rule(
        "hold_consumed",
        DENY,
        "the hold was not consumed by another list, here or (once synced) at another gate",
        text="This payment guarantee has already paid for another list.",
    ),
    Rule(
        "hold_denied",
        DENY,
        "the hold is not on the payment system's deny list",
        text="The payment system has blocked this payment guarantee.",
    ),
    Rule(
        "shopper_denied",
        DENY,
        "the shopper is not on the payment system's deny list",
        text="The payment system has blocked this shopper.",
    ),
    Rule(
        "offline_limit",
        DENY,
        "the unsettled charge backlog is under offline.max_count and "
        "offline.max_amount, and its oldest charge is not older than offline.max_age_s",
        text="The payment system has been unreachable too long to take more charges.",
    ),
    Rule(
        "attendant_item",
        ATTENDANT,
        "no item's catalog category is in policy.attendant_categories",
        text="An item needs a member of staff (age-restricted or security-tagged).",
    ),
    Rule(
        "label_implausible",
        ATTENDANT,
        "every weight or price a GS1 label embeds is within its product's plausible bounds in the catalog",
        text="A weighed or priced label looks implausible: a member of staff checks the item.",
    ),
    Rule(
        "audit",
        ATTENDANT,
        "the list is not drawn for a random attendant audit (policy.audit_per_mille), nor asked for by the "
        "attendant at the lane",
        text="A random check by a member of staff.",
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
