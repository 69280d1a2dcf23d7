"""Run every bench module (bench/bench_*.py, each with a `run()` yielding metric dicts) and print JSON lines.

A benchmark that fails prints a line with its error and the others still run; the exit status says so.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import traceback

import bench


def main(selected: list[str]) -> int:
    failed = 0
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    for name in names:
        if selected and not any(s in name for s in selected):
            continue
        try:
            module = importlib.import_module(f"bench.{name}")
            for metric in module.run():
                print(json.dumps(metric), flush=True)
        except Exception as exc:
            failed += 1
            traceback.print_exc(file=sys.stderr)
            print(json.dumps({"metric": f"{name}.error", "value": str(exc), "unit": "error"}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
