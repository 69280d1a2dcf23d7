"""The NFC transport's wire format, shared by the gate (host) and the phone (card): docs/nfc-transport.md.

Only short APDUs travel, because many readers and phones reject extended length: at most 255 data
bytes per command and Le 00 (256) per response. Longer messages are cut here and glued back on the
other side, command data by ISO 7816-4 chaining and response data by 61 xx + GET RESPONSE.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import CardStatus, InvalidArgument, MalformedResponse

# F0 marks a proprietary AID (ISO 7816-5: no registration); the rest is "SCOEXIT" in ASCII.
AID = bytes.fromhex("F0 53 43 4F 45 58 49 54")

CLA_ISO = 0x00  # SELECT and GET RESPONSE are interindustry commands
CLA_APP = 0x80  # the application's commands are proprietary
CLA_CHAINING = 0x10  # set on every chunk of a chained command but the last

INS_SELECT = 0xA4
INS_GET_RESPONSE = 0xC0
P1_SELECT_BY_NAME = 0x04

# Application commands (docs/protocol.md) take INS values here; 0xA0-0xCF is kept for the transport.
APP_INS = range(0x10, 0x60)

MAX_CHUNK = 255  # data bytes in one short command APDU
MAX_LE = 256  # response data bytes one short APDU can ask for (Le byte 00)
MAX_MESSAGE = 65535  # a whole command or response after reassembly

SW_OK = 0x9000
SW1_MORE_DATA = 0x61
SW_WRONG_LENGTH = 0x6700
SW_LAST_OF_CHAIN_EXPECTED = 0x6883
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_AID_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6A86
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_NO_DIAGNOSIS = 0x6F00

_MEANINGS = {
    SW_OK: "success",
    SW_WRONG_LENGTH: "wrong length",
    SW_LAST_OF_CHAIN_EXPECTED: "last command of a chain expected",
    SW_CONDITIONS_NOT_SATISFIED: "conditions of use not satisfied",
    SW_AID_NOT_FOUND: "application not found",
    SW_WRONG_P1P2: "wrong P1 P2",
    SW_INS_NOT_SUPPORTED: "instruction not supported",
    SW_CLA_NOT_SUPPORTED: "class not supported",
    SW_NO_DIAGNOSIS: "no precise diagnosis",
}


def status_meaning(sw1: int, sw2: int) -> str:
    """The words a technician reads in a log next to a status word."""
    if sw1 == SW1_MORE_DATA:
        return f"{sw2 or 256} more bytes available"
    return _MEANINGS.get(sw1 << 8 | sw2, "application-defined")


@dataclass(frozen=True)
class Command:
    """One short command APDU; ``le`` is None when absent, else 1-256 (256 is the byte 00)."""

    cla: int
    ins: int
    p1: int = 0
    p2: int = 0
    data: bytes = b""
    le: int | None = None

    @property
    def chained(self) -> bool:
        return bool(self.cla & CLA_CHAINING)

    def encode(self) -> bytes:
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out.append(len(self.data))
            out += self.data
        if self.le is not None:
            out.append(self.le & 0xFF)
        return bytes(out)

    @classmethod
    def parse(cls, raw: bytes) -> Command:
        """Decode the four ISO 7816-3 short cases; anything else is a wrong length, as a card says it."""
        if len(raw) < 4:
            raise CardStatus(SW_WRONG_LENGTH, f"{len(raw)}-byte command")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or MAX_LE)
        lc = body[0]
        if lc == 0 or len(body) not in (1 + lc, 2 + lc):
            raise CardStatus(SW_WRONG_LENGTH, f"Lc {lc} with {len(body) - 1} bytes after it")
        le = (body[1 + lc] or MAX_LE) if len(body) == 2 + lc else None
        return cls(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), le)


def select_command(aid: bytes = AID) -> Command:
    return Command(CLA_ISO, INS_SELECT, P1_SELECT_BY_NAME, 0x00, aid, MAX_LE)


def get_response_command(available: int) -> Command:
    """GET RESPONSE asking for what 61 xx announced (xx = 00 means 256)."""
    return Command(CLA_ISO, INS_GET_RESPONSE, 0, 0, le=available or MAX_LE)


def command_chain(ins: int, data: bytes, p1: int, p2: int) -> list[Command]:
    """The application command cut into short APDUs; only the last one asks for a response (Le 00)."""
    if ins not in APP_INS:
        raise InvalidArgument(f"INS 0x{ins:02X} is outside the application range 0x10-0x5F")
    if not (0 <= p1 <= 0xFF and 0 <= p2 <= 0xFF):
        raise InvalidArgument(f"P1 P2 must be bytes, got {p1!r} {p2!r}")
    if len(data) > MAX_MESSAGE:
        raise InvalidArgument(f"{len(data)} bytes of command data; the transport carries {MAX_MESSAGE}")
    chunks = [data[i : i + MAX_CHUNK] for i in range(0, len(data), MAX_CHUNK)] or [b""]
    last = len(chunks) - 1
    return [
        Command(
            CLA_APP | (0 if i == last else CLA_CHAINING), ins, p1, p2, chunk, MAX_LE if i == last else None
        )
        for i, chunk in enumerate(chunks)
    ]


def split_response(raw: bytes) -> tuple[bytes, int, int]:
    """Response data and status word; a status word ISO 7816-3 would not allow is garbage."""
    if len(raw) < 2:
        raise MalformedResponse(f"{len(raw)}-byte response {raw.hex()}: a response ends in two status bytes")
    sw1, sw2 = raw[-2], raw[-1]
    if sw1 >> 4 not in (0x6, 0x9) or sw1 == 0x60:
        raise MalformedResponse(f"response ends in {sw1:02X} {sw2:02X}, which is not a status word")
    if len(raw) - 2 > MAX_LE:
        raise MalformedResponse(f"{len(raw) - 2} data bytes in one response; a short response holds {MAX_LE}")
    return bytes(raw[:-2]), sw1, sw2
