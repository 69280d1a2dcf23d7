"""One tap of the reference phone on a kiosk's reader (vpcd): what `selfcheckout phone kiosk` does.

The phone stays on the reader while the kiosk reads the hold and, on the finishing tap, while the shopper
looks at the proposed list and decides; it is lifted once the kiosk was told the decision. A phone
cannot know whether a kiosk will propose a list after reading the hold, so after the hold was read it
waits `propose_grace_s` for a proposal before it is lifted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.virtual_card import VPCD_HOST, VPCD_PORT, VirtualCard
from gate.protocol.documents import ShoppingList, Signed
from gate.protocol.kiosk import ProposedList
from phone.basket import Line
from phone.errors import StateError
from phone.kiosk_card import KioskCard

PROPOSE_GRACE_S = 1.5
# The answer is handed to the NFC stack before it is on the air: a phone lifted that very instant would
# cut it off (the kiosk then asks for another tap), so it stays this long after answering.
ANSWER_GRACE_S = 0.5


@dataclass(frozen=True)
class KioskTap:
    """What one tap did: the hold shown, a list signed or declined, or a proposal refused (and why)."""

    outcome: str  # "hold", "signed", "declined", "refused"
    proposal: ProposedList | None = None
    signed: Signed[ShoppingList] | None = None
    reason: str | None = None


def tap_kiosk(
    card: KioskCard,
    describe: Callable[[ProposedList], list[Line]],
    decide: Callable[[ProposedList, list[Line]], bool],
    *,
    host: str = VPCD_HOST,
    port: int = VPCD_PORT,
    timeout_s: float = 30.0,
    propose_grace_s: float = PROPOSE_GRACE_S,
) -> KioskTap:
    """Hold the phone on the kiosk's reader; `decide` is the shopper looking at the lines (True: sign)."""
    with VirtualCard(card, host=host, port=port):
        if not card.hold_read.wait(timeout_s):
            why = f": {card.refused}" if card.refused else ""
            raise StateError(f"no kiosk read this phone within {timeout_s:g} s{why}")
        if not card.shown.wait(propose_grace_s):
            if card.refused:
                return KioskTap("refused", reason=card.refused)
            return KioskTap("hold")
        proposal = card.proposal
        assert proposal is not None
        if decide(proposal, describe(proposal)):
            signed = card.confirm(proposal.hash())
            outcome = "signed"
        else:
            card.decline()
            signed, outcome = None, "declined"
        if not card.delivered.wait(timeout_s):
            raise StateError(f"the kiosk did not take the answer within {timeout_s:g} s: tap it again")
        time.sleep(ANSWER_GRACE_S)
        return KioskTap(outcome, proposal, signed)
