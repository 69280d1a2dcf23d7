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
    code: str
    kind: str
    rule: str


RULES: tuple[Rule, ...] = (
    Rule("malformed", DENY, "the presentation is one canonical, well-formed document (else nothing more)"),
    Rule("voucher_signature", DENY, "the hold voucher is signed by a trusted payment-system key"),
    Rule("voucher_expired", DENY, "now is not after the voucher's `expires`"),
    Rule("voucher_not_yet_valid", DENY, "the voucher's `issued` is not later than now + clock skew"),
    Rule("voucher_wrong_store", DENY, "the voucher is for this store"),
    Rule("voucher_wrong_currency", DENY, "the voucher is in the lane's currency"),
    Rule("list_signature", DENY, "the list is signed by the voucher's shopper key"),
    Rule("list_wrong_hold", DENY, "the list's hold id is the voucher's hold id"),
    Rule("list_wrong_store", DENY, "the list is for this store"),
    Rule("list_wrong_currency", DENY, "the list is in the lane's currency"),
    Rule("list_stale", DENY, "the list was created no longer than policy.max_list_age_s ago"),
    Rule("list_from_future", DENY, "the list's `created` is not later than now + clock skew"),
    Rule("answer_signature", DENY, "the challenge answer is signed by the voucher's shopper key"),
    Rule("answer_wrong_gate", DENY, "the answer names this gate"),
    Rule("answer_wrong_nonce", DENY, "the answer carries the nonce of the challenge this gate just sent"),
    Rule("answer_wrong_list", DENY, "the answer carries the SHA-256 of the presented list's body bytes"),
    Rule("total_mismatch", DENY, "the list's total is the sum of its line totals"),
    Rule("over_guarantee", DENY, "the total is at most the voucher's guaranteed amount"),
    Rule("invalid_code", DENY, "every code is a valid EAN/UPC/GTIN (check digits, GS1 price check digit)"),
    Rule("unknown_item", DENY, "every code (or GS1 base code) is in the gate's catalog"),
    Rule(
        "price_mismatch",
        DENY,
        "every unit price is a catalog price valid within policy.price_grace_s (price codes: the one in it)",
    ),
    Rule("weight_mismatch", DENY, "weighed lines carry grams (as embedded in a weight code), others none"),
    Rule("too_many_items", DENY, "the list has at most policy.max_items lines"),
    Rule("quantity_limit", DENY, "no line has a quantity over policy.max_quantity"),
    Rule("list_used", DENY, "the list id was never used before at this gate"),
    Rule(
        "hold_consumed",
        DENY,
        "the hold was not consumed by another list, here or (once synced) at another gate",
    ),
    Rule("hold_denied", DENY, "the hold is not on the payment system's deny list"),
    Rule("shopper_denied", DENY, "the shopper is not on the payment system's deny list"),
    Rule(
        "offline_limit",
        DENY,
        "the unsettled charge backlog is under offline.max_count and "
        "offline.max_amount, and its oldest charge is not older than offline.max_age_s",
    ),
    Rule("attendant_item", ATTENDANT, "no item's catalog category is in policy.attendant_categories"),
    Rule(
        "label_implausible",
        ATTENDANT,
        "every weight or price a GS1 label embeds is within its product's plausible bounds in the catalog",
    ),
    Rule(
        "audit",
        ATTENDANT,
        "the list is not drawn for a random attendant audit (policy.audit_per_mille), nor asked for by the "
        "attendant at the lane",
    ),
)

BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}
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


def verdict_of(codes: set[str] | frozenset[str]) -> str:
    if any(BY_CODE[c].kind == DENY for c in codes):
        return "deny"
    if codes:
        return "attendant"
    return "pass"
