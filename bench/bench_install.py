"""What an install costs and how exposed its services are.

- `systemd.exposure.<unit>`: the score `systemd-analyze security --offline=true` gives each unit in systemd/
  (0 = fully locked down, 10 = none; the units aim at 2.0 or less).
- `install.runtime_mb`: the size of the virtualenv `scripts/install lane` makes (runtime dependencies and
  the nfc and pi extras, no test tools), made here the same way in a temporary folder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.stats import metric
from selfcheckout.install import layout, steps

UNITS = sorted((layout.SOURCE / "systemd").glob("*.service"))


def run() -> Iterator[dict]:
    yield from _exposures()
    yield _runtime_size()


def _exposures() -> Iterator[dict]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        raise RuntimeError("systemd-analyze is not installed (scripts/install-standins)")
    program = Path(sys.executable).parent / "selfcheckout"  # ExecStart must name a file that exists here
    with tempfile.TemporaryDirectory() as folder:
        for unit in UNITS:
            text = re.sub(r"^ExecStart=\S+", f"ExecStart={program}", unit.read_text(), flags=re.MULTILINE)
            copy = Path(folder) / unit.name
            copy.write_text(text)
            done = subprocess.run(
                [analyze, "security", "--offline=true", str(copy)], capture_output=True, text=True, timeout=60
            )
            score = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
            if score is None:
                raise RuntimeError(f"{unit.name}: no exposure score: {done.stderr.strip()}")
            yield metric(f"systemd.exposure.{unit.stem}", float(score.group(1)), "exposure")


def _runtime_size() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        venv = Path(folder) / "venv"
        # Debian's python3, as the install uses (the install runs under it).
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        log = Path(folder) / "install.log"
        steps.make_venv(venv, layout.LANE.extras, log=log, say=lambda _: None, python=python)
        size = sum(p.lstat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    return metric("install.runtime_mb", round(size / 1e6, 1), "MB")
