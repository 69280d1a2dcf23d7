"""The lane's hardware, and nothing else: no lists, money or signatures live here.

- scanner (framing in scan_framing): the serial barcode scanner, events per scan.
- nfc_pcsc: the PC/SC reader waiting for phones; nfc_inprocess: the same without pcscd, for the demo.
  Both hand out nfc_session.PhoneSession; nfc_apdu is the wire format, nfc_applet the phone's side of it,
  virtual_card a phone for vsmartcard's vpcd (docs/nfc-transport.md).
- gate_io: relay, door sensor, beam, lights, buzzer, fire alarm, exit button, on gpiozero.
- errors: DriverError and its families.

Every driver takes its backend (port URL or serial object, reader name, pin factory) as an argument and
reports its state as a plain dict from health().
"""
