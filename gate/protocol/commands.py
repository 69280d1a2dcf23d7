"""The application commands the gate sends the phone over NFC, after SELECT of the product's AID.

Two exchanges per tap: the challenge out and the presentation back, then the receipt out. Framing,
chaining and status words are the transport's (docs/nfc-transport.md); the payloads are documents.
"""

INS_CHALLENGE = 0x10  # data: ExitChallenge (CBOR); response: ExitPresentation (CBOR)
INS_RECEIPT = 0x20  # data: signed ExitReceipt envelope (CBOR); response: empty
