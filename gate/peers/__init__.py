"""Lanes of one store telling each other about every pass (docs/operations.md, "Lanes of one store").

`record` holds the signed pass record, `transport` the engines that carry records between lanes (NATS
JetStream clustered across the lanes, or an in-process bus for a demo on one machine), `link` the lane's
side: a durable outbox of its own records, published after each commit, and the records of the other
lanes applied to its store.
"""

from gate.peers.record import PassRecord, RecordRefused, new_record, verify_record

__all__ = ["PassRecord", "RecordRefused", "new_record", "verify_record"]
