"""What the phone's screen says for each verdict and reason code of an exit receipt.

The codes are the gate's (gate/legality/reasons.py, docs/protocol.md): stable, never renamed, so an app
keys its texts on them. A code this table does not know yet is shown as itself; the verdict alone still
tells the shopper what to do.
"""

from __future__ import annotations

VERDICTS = {
    "pass": "The gate is open: have a good day. You will be charged later; the receipt is on your phone.",
    "deny": "The gate stays closed. See the reasons below, fix the list or ask a member of staff.",
    "attendant": "Please see the attendant at the gate, who will check your goods and let you out.",
    "emergency": "Emergency: the gate is open for everyone. Please leave calmly.",
}

REASONS = {
    "malformed": "The gate could not read what the phone sent. Tap again; if it repeats, ask staff.",
    "voucher_signature": "The gate does not recognise your hold. Ask for a new hold and confirm again.",
    "voucher_expired": "Your hold has expired. Ask for a new hold and confirm the list again.",
    "voucher_not_yet_valid": "Your hold is not valid yet: the phone's or the gate's clock is wrong.",
    "voucher_wrong_store": "Your hold is for another store.",
    "voucher_wrong_currency": "Your hold is in another currency than this store's.",
    "list_signature": "The list is not signed with the key your hold names. Confirm the list again.",
    "list_wrong_hold": "The list was made for another hold. Confirm the list again.",
    "list_wrong_store": "The list is for another store.",
    "list_wrong_currency": "The list is in another currency than this store's.",
    "list_stale": "The list was confirmed too long ago. Confirm it again.",
    "list_from_future": "The list is dated in the future: check the phone's clock.",
    "answer_signature": "The phone's answer to the gate did not verify. Tap again.",
    "answer_wrong_gate": "The phone answered another gate. Tap again.",
    "answer_wrong_nonce": "The phone's answer was not for this tap. Tap again.",
    "answer_wrong_list": "The phone's answer was for another list. Tap again.",
    "total_mismatch": "The list's total is not the sum of its lines. Confirm the list again.",
    "over_guarantee": "The total is more than your hold. Remove something or ask for a larger hold.",
    "invalid_code": "A barcode in the list is not valid. Remove it and scan it again.",
    "unknown_item": "An item is not in this store's catalog. Remove it or ask staff.",
    "price_mismatch": "A price has changed. Refresh the catalog, scan the item again and confirm.",
    "weight_mismatch": "A weighed item does not match its label. Scan the label the scale printed.",
    "too_many_items": "The list has more lines than the store allows at the gate. Ask staff.",
    "quantity_limit": "A line has more pieces than the store allows at the gate. Ask staff.",
    "list_used": "This list was already used to leave. Start a new visit for new goods.",
    "hold_consumed": "Your hold was already used for another exit. Ask for a new hold.",
    "hold_denied": "Your hold is blocked by the store. Ask staff.",
    "shopper_denied": "Your account is blocked, for example by an unpaid charge. Top up or ask staff.",
    "offline_limit": "The gate cannot reach the store's payment system for now. Please see staff.",
    "attendant_item": "An item needs a check by staff (age-restricted or security-tagged).",
    "label_implausible": "A weight or price label looks unusual: staff will check the item with you.",
    "audit": "You were chosen for a random check. Thank you for your patience.",
}

# Catalog categories a store usually keeps behind an attendant (gate policy.attendant_categories).
CHECKED_CATEGORIES = {
    "age-restricted": "staff will check your age at the exit.",
    "security-tagged": "staff will remove the security tag at the exit.",
}


def verdict_text(verdict: str) -> str:
    return VERDICTS.get(verdict, f"Verdict {verdict!r}: ask a member of staff.")


def reason_text(code: str) -> str:
    return REASONS.get(code, f"Reason {code}: ask a member of staff.")


# Why the phone refused a kiosk's proposed list (gate/protocol/kiosk.py REFUSALS), as the phone shows it.
KIOSK_REFUSALS = {
    "no_hold": "This phone has no open hold. Ask for a hold in the app first.",
    "hold_expired": "Your hold has expired. Ask for a new hold, then tap the kiosk again.",
    "wrong_store": "The kiosk's list is for another store than your hold.",
    "wrong_hold": "The kiosk's list was made for another hold. Tap the kiosk to start again.",
    "wrong_currency": "The kiosk's list is in another currency than your hold.",
    "over_hold": "The kiosk's list is over your hold. Remove something at the kiosk or ask for more.",
    "changed": "The kiosk's list changed after the phone showed it. Decline the old one and tap again.",
    "visit_over": "You already left the store with this hold. Ask for a new hold to shop again.",
}


def kiosk_refusal_text(code: str) -> str:
    return KIOSK_REFUSALS.get(code, f"Refused ({code}): ask a member of staff.")
