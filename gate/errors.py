"""The gate package's exceptions: one root, so callers at the edge can catch everything we raise."""


class GateError(Exception):
    """Root of every error raised by the gate package."""


class ConfigError(GateError, ValueError):
    """A lane config file is unreadable, malformed, or holds a value outside what is accepted."""
