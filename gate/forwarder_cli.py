"""`python -m gate.forwarder_cli`: only the forwarder, against a gate database (tools, tests)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from gate.forwarder import Forwarder
from gate.protocol.keys import TrustedKeys, read_secret_key
from gate.store import GateStore


def main(argv: list[str] | None = None) -> int:
    """Run the forwarder until SIGTERM or Ctrl-C (or one round with --once); 0 when it stopped."""
    parser = argparse.ArgumentParser(prog="python -m gate.forwarder_cli", description=main.__doc__)
    parser.add_argument("--database", required=True, type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--trust", required=True, action="append", type=Path, help="PS public key file")
    parser.add_argument("--store", required=True)
    parser.add_argument("--gate", help="this gate's id, to sign notice pulls with --gate-key")
    parser.add_argument("--gate-key", type=Path, help="this gate's secret key file")
    parser.add_argument("--base-ms", type=int, default=500)
    parser.add_argument("--cap-ms", type=int, default=60_000)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--sync-interval", type=float, default=60.0, help="seconds; 0 disables the feed")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with (
        GateStore(args.database) as store,
        Forwarder(
            store,
            url=args.url,
            trusted=TrustedKeys.from_files(args.trust),
            store_id=args.store,
            gate_id=args.gate,
            gate_key=read_secret_key(args.gate_key) if args.gate_key else None,
            timeout_s=args.timeout,
            backoff_base_s=args.base_ms / 1000,
            backoff_cap_s=args.cap_ms / 1000,
            sync_interval_s=args.sync_interval or None,
        ) as forwarder,
    ):
        if args.once:
            forwarder.drain_once()
            return 0
        forwarder.start()
        print("forwarder running", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
