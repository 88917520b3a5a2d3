"""One measurement in a fresh process: one contender, one scenario; prints one JSON line.

    python -m benchmarks.worker --contender ours-httpx --scenario seq --url http://127.0.0.1:PORT

Scenarios (each after a warm-up, each bounded by a count *and* a time budget):

* ``seq``: sequential chat calls; value = seconds per call (mean).
* ``c64``: chat calls from 64 concurrent tasks on one client; value = calls per second.
* ``stream``: sequential streams of ``--stream-len`` chunks; value = content chunks per second
  (first byte sent to last chunk read); also the median time to the first content chunk.
* ``streams500``: 500 streams of ``--short-len`` chunks at once; value = seconds for all of them;
  also the process's peak RSS.
* ``embed``: embedding calls of ``--embed-count`` inputs (the server answers ``--embed-dim``
  floats each); value = seconds per call.

It also reports the fake server's CPU share during the measured window (from /proc), so a run
can show the server was not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from typing import Any

from .contenders import make


def _server_cpu(pid: int | None) -> float | None:
    """CPU seconds the server process has used so far (Linux), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Window:
    """Times a measured window and the server's CPU use inside it (and profiles it, if asked)."""

    profile_to: str | None = None

    def __init__(self, server_pid: int | None) -> None:
        self.pid = server_pid
        self.profiler: Any = None

    def __enter__(self) -> Window:
        if self.profile_to:
            import cProfile

            self.profiler = cProfile.Profile()
        self.cpu0 = _server_cpu(self.pid)
        self.own0 = time.process_time()
        self.t0 = time.perf_counter()
        if self.profiler is not None:
            self.profiler.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.profiler is not None:
            self.profiler.disable()
        self.seconds = time.perf_counter() - self.t0
        self.own_cpu = time.process_time() - self.own0  # this process's CPU: steadier than wall time on a busy machine
        if self.profiler is not None and self.profile_to:
            self.profiler.dump_stats(self.profile_to)
        cpu1 = _server_cpu(self.pid)
        self.server_share = (None if cpu1 is None or self.cpu0 is None or self.seconds <= 0
                             else (cpu1 - self.cpu0) / self.seconds)


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"wrong answer: {what}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    contender = make(args.contender)
    scenario = args.scenario
    url = args.url
    if scenario == "stream":
        url += f"/s{args.stream_len}"
    elif scenario == "streams500":
        url += f"/s{args.short_len}"
    await contender.open(url, args.provider)
    budget, n = args.budget, args.n
    out: dict[str, Any] = {}
    try:
        if scenario == "seq":
            for _ in range(20):
                _check(bool(await contender.chat()), "empty chat answer")
            count = 0
            with Window(args.server_pid) as window:
                deadline = time.perf_counter() + budget
                while count < n and (count < 10 or time.perf_counter() < deadline):
                    await contender.chat()
                    count += 1
            out.update(value=window.seconds / count, unit="s/call", count=count)
        elif scenario == "c64":
            for _ in range(2):
                await asyncio.gather(*(contender.chat() for _ in range(64)))
            issued = 0
            with Window(args.server_pid) as window:
                deadline = time.perf_counter() + budget

                async def worker() -> None:
                    nonlocal issued
                    while issued < n and (issued < 128 or time.perf_counter() < deadline):
                        issued += 1
                        await contender.chat()

                await asyncio.gather(*(worker() for _ in range(64)))
            out.update(value=issued / window.seconds, unit="calls/s", count=issued)
        elif scenario == "stream":
            text, _ = await contender.stream()
            _check(len(text) == 4 * args.stream_len, f"stream text of {len(text)} characters")
            ttfts: list[float] = []
            count = 0
            with Window(args.server_pid) as window:
                deadline = time.perf_counter() + budget
                while count < n and (count < 2 or time.perf_counter() < deadline):
                    text, first = await contender.stream()
                    ttfts.append(first if first is not None else float("nan"))
                    count += 1
            out.update(value=count * args.stream_len / window.seconds, unit="chunks/s", count=count,
                       ttft=statistics.median(ttfts))
        elif scenario == "streams500":
            await asyncio.gather(*(contender.stream() for _ in range(10)))
            with Window(args.server_pid) as window:
                results = await asyncio.gather(*(contender.stream() for _ in range(500)))
            _check(all(len(text) == 4 * args.short_len for text, _ in results), "a short stream's text")
            out.update(value=window.seconds, unit="s", count=500)
        elif scenario == "embed":
            inputs = [f"benchmark input number {i}" for i in range(args.embed_count)]
            vectors = await contender.embed(inputs)
            _check(len(vectors) == args.embed_count and len(vectors[0]) == args.embed_dim, "embedding shape")
            count = 0
            with Window(args.server_pid) as window:
                deadline = time.perf_counter() + budget
                while count < n and (count < 2 or time.perf_counter() < deadline):
                    await contender.embed(inputs)
                    count += 1
            out.update(value=window.seconds / count, unit="s/call", count=count)
        else:
            raise SystemExit(f"unknown scenario {scenario!r}")
    finally:
        await contender.close()
    out["server_share"] = window.server_share
    out["cpu_per_op"] = window.own_cpu / max(1, out["count"] * (args.stream_len if scenario == "stream" else 1))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one benchmark measurement")
    parser.add_argument("--contender", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--provider", default="openai")
    parser.add_argument("--n", type=int, default=300, help="most iterations")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds after which to stop iterating")
    parser.add_argument("--stream-len", type=int, default=2000)
    parser.add_argument("--short-len", type=int, default=20)
    parser.add_argument("--embed-count", type=int, default=256)
    parser.add_argument("--embed-dim", type=int, default=1536)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--profile", default=None, help="write a cProfile of the measured window here")
    args = parser.parse_args(argv)
    Window.profile_to = args.profile
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    result = asyncio.run(run(args))
    result.update(contender=args.contender, scenario=args.scenario, provider=args.provider,
                  rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
