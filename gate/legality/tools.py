"""Technician tools around the legality check: judge a recorded presentation from a file."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from gate.config import LaneConfig
from gate.errors import DecodeError, GateError
from gate.legality.check import Decision, GateIdentity, Policy, check
from gate.protocol.documents import NONCE_BYTES, VERSION, ExitChallenge, ExitPresentation
from gate.protocol.keys import TrustedKeys
from gate.store import GateStore

_HEX = re.compile(rb"[0-9a-fA-F\s]+")


def read_document_file(path: Path) -> bytes:
    """The bytes of a document file: raw CBOR, or hex text (as in logs and docs/test-vectors.json)."""
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise GateError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if data and _HEX.fullmatch(data):
        try:
            return bytes.fromhex(data.decode("ascii"))
        except ValueError:
            pass
    return data


def check_file(
    config: LaneConfig, presentation_file: Path, challenge_file: Path | None, now: float
) -> tuple[Decision, bool]:
    """Judge a presentation file as this lane would; returns the decision and whether the challenge
    was assumed (taken from the answer itself, when no challenge file is given)."""
    raw = read_document_file(presentation_file)
    gate = GateIdentity.from_config(config)
    assumed = challenge_file is None
    if challenge_file is not None:
        try:
            challenge = ExitChallenge.decode(read_document_file(challenge_file))
        except DecodeError as exc:
            raise GateError(f"{challenge_file}: not an exit challenge: {exc}") from exc
    else:
        try:
            answer = ExitPresentation.decode(raw).answer.doc
            challenge = ExitChallenge(
                v=VERSION, gate=answer.gate, store=gate.store, nonce=answer.nonce, time=int(now)
            )
        except DecodeError:
            challenge = ExitChallenge(
                v=VERSION, gate=gate.gate, store=gate.store, nonce=bytes(NONCE_BYTES), time=int(now)
            )
    trusted = TrustedKeys.from_files(config.payments.public_key_files)
    with GateStore(config.lane.database, create=False) as store:
        decision = check(
            raw,
            challenge,
            now=now,
            catalog=store,
            state=store,
            policy=Policy.from_config(config),
            trusted=trusted,
            gate=gate,
        )
    return decision, assumed
