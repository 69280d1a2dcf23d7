"""What the phone's screen says for each verdict and reason code of an exit receipt.

The codes are the gate's (gate/legality/reasons.py, docs/protocol.md): stable, never renamed, so an app
keys its texts on them. A code this table does not know yet is shown as itself; the verdict alone still
tells the shopper what to do.
"""

from __future__ import annotations

from gate.legality.reasons import RULES

VERDICTS = {
    "pass": "The gate is open: have a good day. You will be charged later; the receipt is on your phone.",
    "deny": "The gate stays closed. See the reasons below, fix the list or ask a member of staff.",
    "attendant": "Please see the attendant at the gate, who will check your goods and let you out.",
    "emergency": "Emergency: the gate is open for everyone. Please leave calmly.",
}

# One text per reason code, kept with the rule itself (gate/legality/reasons.py): the panel, the demo, the
# docs and this screen all say the same sentence.
REASONS = {rule.code: rule.text for rule in RULES}

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
