"""Where the documented example configs are, in a checkout and in an installed virtualenv.

A checkout has them in config/. `scripts/install` builds a wheel, which holds packages only, so the wheel
also puts a copy in <venv>/share/selfcheckout/config (pyproject's data-files): the installed
`selfcheckout demo` and the example-based helpers find them there.
"""

from __future__ import annotations

import sys
from pathlib import Path


def example(name: str) -> Path:
    """The example config file `name` (e.g. "lane.example.toml")."""
    checkout = Path(__file__).resolve().parent.parent / "config" / name
    if checkout.exists():
        return checkout
    return Path(sys.prefix) / "share" / "selfcheckout" / "config" / name
