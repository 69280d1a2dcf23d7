"""The signed exit pass: the documents that travel between phone, gate and payment system (docs/protocol.md).

Shared by the gate, the payment system and the reference phone, so that there is one encoder and one
verifier for every party.
"""
