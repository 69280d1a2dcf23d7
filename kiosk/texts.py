"""Every sentence the kiosk screen can say, keyed by the code the session and the tap loop use.

Marked for translation with Flask-Babel's lazy_gettext; kiosk/translations/<language>/LC_MESSAGES holds
the catalogs. Money parameters (`total`, `hold`, `price`) are integers in minor units until the screen
formats them in the shopper's language.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

NOTICES = {
    # taps
    "restarted": _l(
        "The kiosk restarted while a shopper was scanning. Nothing was signed or charged: "
        "tap your phone to start again."
    ),
    "tap_first": _l("Tap your phone on the reader first, then scan."),
    "no_hold": _l("This phone has no hold yet. Open the app, ask for a hold, then tap again."),
    "other_store": _l("This phone's hold is for another store."),
    "bad_voucher": _l("The phone's hold could not be verified. Please ask staff."),
    "hold_expired": _l("This phone's hold has expired. Ask for a new hold in the app, then tap again."),
    "wrong_currency": _l("This phone's hold is in another currency. Please ask staff."),
    "not_our_app": _l("This phone did not answer as the store's app. Open the app and tap again."),
    "phone_lost": _l("The phone was taken away too soon. Tap again and hold it still."),
    "another_phone": _l(
        "This is not the phone that started this session. Tap the phone you started with, or cancel."
    ),
    "empty": _l("Scan something first, then tap your phone to finish."),
    "over_hold_total": _l("The total %(total)s is over your hold of %(hold)s. Remove something first."),
    "declined": _l("You declined the list on your phone. Change it here, then tap again."),
    "confirm_timeout": _l("The phone did not answer in time. Tap again to finish."),
    "confirm_first": _l("Please confirm the list on your phone first, or cancel."),
    "bad_reply": _l("The phone's answer could not be verified. Tap again; if it repeats, ask staff."),
    "bad_signature": _l("The phone's signature could not be verified. Tap again; if it repeats, ask staff."),
    "not_proposed": _l("The phone signed another list than this one. Tap again; if it repeats, ask staff."),
    "refused_no_hold": _l("Your phone has no open hold any more. Ask for a hold in the app."),
    "refused_hold_expired": _l("Your hold has expired. Ask for a new hold in the app, then tap again."),
    "refused_wrong_store": _l("Your phone says this list is for another store. Please ask staff."),
    "refused_wrong_hold": _l("Your phone has another hold now. Cancel and start again."),
    "refused_wrong_currency": _l("Your phone's hold is in another currency. Please ask staff."),
    "refused_over_hold": _l("Your phone says the list is over your hold. Remove something."),
    "refused_changed": _l("Your phone is showing an older list. Decline it on the phone, then tap again."),
    "refused_visit_over": _l("Your phone already left the store with this hold. Ask for a new hold."),
    # scans and the touch screen
    "added": _l("%(name)s added."),
    "fewer": _l("%(name)s: one less."),
    "removed": _l("%(name)s removed."),
    "attendant_item": _l("%(name)s added: staff will check it at the exit."),
    "invalid_scan": _l("That barcode could not be read. Please scan it again."),
    "unknown_code": _l("%(code)s is not in the catalog. Please ask staff."),
    "blocked_code": _l("%(name)s cannot be sold here. Please ask staff."),
    "weigh_first": _l("%(name)s is sold by weight: weigh it and scan the label the scale prints."),
    "over_hold": _l("%(name)s would take the total to %(total)s, over your hold of %(hold)s. Not added."),
    "qty_limit": _l("%(name)s: at most %(max)s on one line."),
    "price_changed": _l("The price of %(name)s changed to %(price)s. Your list shows the new price."),
    # the kiosk itself
    "scanner_lost": _l("The scanner is not connected. Please ask staff."),
    "scanner_back": _l("The scanner is working again."),
    "idle_cleared": _l("The session was cleared after %(seconds)s s without activity. Nothing was charged."),
    "cancelled": _l("Session cancelled. Nothing was charged."),
}

MONEY_PARAMS = ("total", "hold", "price")
