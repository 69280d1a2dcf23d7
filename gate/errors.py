"""The gate package's exceptions: one root, so callers at the edge can catch everything we raise."""


class GateError(Exception):
    """Root of every error raised by the gate package."""


class ConfigError(GateError, ValueError):
    """A lane config file is unreadable, malformed, or holds a value outside what is accepted."""


class ProtocolError(GateError, ValueError):
    """A document or message does not follow docs/protocol.md."""


class DecodeError(ProtocolError):
    """Bytes are not one canonical, well-formed document of the expected shape."""


class SignatureError(ProtocolError):
    """A signature does not verify, or is made by a key we do not trust for that document."""


class KeyFileError(GateError, ValueError):
    """A key file is missing, unreadable, or does not hold a key."""


class LaneError(GateError, RuntimeError):
    """The lane cannot do what a technician or attendant asked now (nothing waiting, lane not in service)."""
