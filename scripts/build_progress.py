"""Progress for a long native build: reads the build's output on stdin, prints a line now and then.

    pip wheel -v ... 2>&1 | python scripts/build_progress.py --log build.log --expect 200

The full output goes to ``--log`` (printed in full when the build fails); the terminal gets one
line per 10 % or per 30 s: the step reached (ninja's ``[N/M]``), the time spent and an estimate of
the time left from the pace so far. Before the first step it prints ``--expect``, the measured
duration on 2 cores, so the first estimate is honest too. It always exits 0: the Makefile checks
the build's own status (bash's PIPESTATUS) and prints the log's end when it failed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

STEP = re.compile(r"^\s*\[(\d+)/(\d+)\]")


def minutes(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--expect", type=float, required=True, help="seconds the build took when measured")
    parser.add_argument("--label", default="build")
    args = parser.parse_args()
    started = last_print = time.monotonic()
    last_tenth = -1
    print(f"[{args.label}] started; it took {minutes(args.expect)} on 2 cores when measured "
          f"(full log: {args.log})", flush=True)
    with args.log.open("w", encoding="utf-8") as log:
        for line in sys.stdin:
            log.write(line)
            found = STEP.match(line)
            if not found:
                continue
            done, total = int(found.group(1)), int(found.group(2))
            now = time.monotonic()
            tenth = 10 * done // total
            if tenth == last_tenth and now - last_print < 30:
                continue
            elapsed = now - started
            # Early on the pace says little (configure time, uneven steps): trust the measurement.
            left = elapsed / done * (total - done) if done >= total / 5 else max(0.0, args.expect - elapsed)
            print(f"[{args.label}] step {done}/{total} ({100 * done // total} %), {minutes(elapsed)} spent, "
                  f"about {minutes(left)} left", flush=True)
            last_tenth, last_print = tenth, now
    print(f"[{args.label}] output ended after {minutes(time.monotonic() - started)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
