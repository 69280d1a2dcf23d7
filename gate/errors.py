"""The gate package's exceptions: one root, so callers at the edge can catch everything we raise."""

from __future__ import annotations


class GateError(Exception):
    """Root of every error raised by the gate package."""


class ConfigError(GateError, ValueError):
    """A lane config file is unreadable, malformed, or holds a value outside what is accepted.

    `problems` holds every mistake found, one line each; the message is the first, and says how many more
    there are, so a command that stops on it still stops in one line.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]

    @classmethod
    def of(cls, problems: list[str], source: object) -> ConfigError:
        more = len(problems) - 1
        message = problems[0]
        if more:
            message += f" (and {more} more: `selfcheckout config check {source}` lists them all)"
        return cls(message, list(problems))


class ProtocolError(GateError, ValueError):
    """A document or message does not follow docs/protocol.md."""


class DecodeError(ProtocolError):
    """Bytes are not one canonical, well-formed document of the expected shape."""


class SignatureError(ProtocolError):
    """A signature does not verify, or is made by a key we do not trust for that document."""


class KeyFileError(GateError, ValueError):
    """A key file is missing, unreadable, or does not hold a key."""


class SetupError(GateError, RuntimeError):
    """This machine lacks something the lane needs before it can start (a Python extra, a database)."""


class LaneError(GateError, RuntimeError):
    """The lane cannot do what a technician or attendant asked now (nothing waiting, lane not in service)."""
