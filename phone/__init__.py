"""The reference mobile terminal: what a shopper's phone app does (claims 1-4), as a library and a command.

- `phone.terminal.Phone`: the steps on a state folder (init, enrol, sync, request_hold, scan, remove,
  confirm, card, tap, fetch_notice) and what they return (`Profile`, `Visit`, `ScanResult`).
- `phone.card.ExitCard`: the NFC card-emulation service the gate talks to (INS_CHALLENGE, INS_RECEIPT).
- `phone.checks`: every check made on a voucher, receipt, notice or feed before it is believed.
- `phone.basket`, `phone.money` (typed amounts; display is `gate.money`),
  `phone.storage`, `phone.ps`, `phone.messages`, `phone.errors`.
- `phone.cli`: `selfcheckout phone ...`. The guide for app developers is docs/phone-app.md.
"""
