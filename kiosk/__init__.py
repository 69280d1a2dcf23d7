"""The self-checkout kiosk: a screen, a serial scanner and a PC/SC reader next to the exit.

It holds no shopper key and no money. A shopper taps their phone (the kiosk reads the hold), scans goods
at the kiosk's scanner, and taps again: the phone shows the proposed list, the shopper confirms it there,
and the phone signs it with the shopper's key for the gate. `kiosk.service.KioskService` puts the parts
together; `kiosk.web` is the screen.
"""
