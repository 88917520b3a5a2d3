"""Benchmark runner: starts the fake server, interleaves the contenders, prints the table.

    python -m benchmarks.run            # the full run (make bench), a few minutes
    python -m benchmarks.run --quick    # one repeat, small counts, no third-party SDKs (make bench-quick)

Every measurement runs in a fresh worker process (``benchmarks.worker``), pinned to one CPU while
the server has the other (on machines with two or more). Within each repeat, each scenario runs
every contender back to back, in an order rotated per repeat, so slow drift of the machine
touches all of them alike. Each figure is the median over repeats with the min-max spread.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .contenders import ALL, NEEDS

ROOT = Path(__file__).resolve().parent.parent
DASH, TIMES, UP, DOWN, GE, LE = "\u2013", "\u00d7", "\u2191", "\u2193", "\u2265", "\u2264"  # markdown table
SCENARIOS = ("seq", "c64", "stream", "streams500", "embed")
QUICK_CONTENDERS = ("ours-httpx", "ours-aiohttp", "raw-httpx", "raw-aiohttp")
#: What each contender has to import before its first call (measured in a fresh interpreter).
IMPORTS = {
    "raw-httpx": "import httpx",
    "ours-httpx": "from llm_connectors.connectors.openai import OpenAIConnector",
    "ours-aiohttp": "from llm_connectors.connectors.openai import OpenAIConnector; import aiohttp",
    "raw-aiohttp": "import aiohttp",
    "openai-sdk": "import openai",
    "litellm": "import litellm",
}
# (key, title, unit multiplier, unit, higher is better)
COLUMNS = (
    ("import", "import", 1e3, "ms", False),
    ("seq", "per call (sequential)", 1e3, "ms", False),
    ("c64", "throughput c=64", 1, "calls/s", True),
    ("stream", "stream 2,000 chunks", 1e-3, "k chunks/s", True),
    ("ttft", "time to first token", 1e3, "ms", False),
    ("streams500", "500 concurrent streams", 1, "s", False),
    ("rss", "peak RSS (500 streams)", 1 / 1024, "MiB", False),
    ("embed", f"embeddings 256{TIMES}1536", 1e3, "ms/call", False),
)


class Profile:
    def __init__(self, quick: bool) -> None:
        self.repeats = 1 if quick else 3
        self.import_reps = 3
        self.sizes = {  # scenario: (most iterations, seconds budget)
            "seq": (200, 0.5) if quick else (1000, 2.0),
            "c64": (640, 1.0) if quick else (4000, 3.0),
            "stream": (3, 1.0) if quick else (20, 3.0),
            "streams500": (1, 0.0),
            "embed": (3, 0.5) if quick else (20, 2.0),
        }


def _cpus() -> tuple[int | None, int | None]:
    """(worker CPU, server CPU) when there are two or more CPUs to pin to."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[-1]) if len(cpus) >= 2 else (None, None)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # litellm would fetch its price list from the network
    env.pop("LLM_CONNECTORS_TRANSPORT", None)  # each contender names its engine
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def fake_server(args: argparse.Namespace, cpu: int | None) -> Iterator[tuple[str, int]]:
    cmd = [sys.executable, "-m", "benchmarks.server", "--stream-lengths", f"{args.stream_len},{args.short_len}",
           "--embedding-count", str(args.embed_count), "--embedding-dim", str(args.embed_dim)]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server prints READY within a second or two
        if not line.startswith("READY "):
            raise RuntimeError(f"the fake server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}", proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def measure_imports(contenders: Sequence[str], reps: int) -> dict[str, list[float]]:
    # pip compiles an installed package's bytecode; a source checkout edited since its last import
    # would be recompiled on every timed import (always, under PYTHONDONTWRITEBYTECODE). Compile it
    # first so that ours is timed as users get it, like the installed contenders.
    compileall.compile_dir(str(ROOT / "llm_connectors"), quiet=1)
    out: dict[str, list[float]] = {c: [] for c in contenders}
    for rep in range(reps):
        order = list(contenders[rep % len(contenders):]) + list(contenders[:rep % len(contenders)])
        for name in order:
            code = (f"import time; t = time.perf_counter(); {IMPORTS[name]}; "
                    "print(time.perf_counter() - t)")
            proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True,
                                  text=True, timeout=120, check=False)
            if proc.returncode == 0:
                out[name].append(float(proc.stdout.strip().splitlines()[-1]))
    return out


def run_worker(name: str, scenario: str, url: str, server_pid: int, cpu: int | None, args: argparse.Namespace,
               profile: Profile) -> dict[str, Any] | None:
    n, budget = profile.sizes[scenario]
    cmd = [sys.executable, "-m", "benchmarks.worker", "--contender", name, "--scenario", scenario, "--url", url,
           "--provider", args.provider, "--n", str(n), "--budget", str(budget), "--stream-len", str(args.stream_len),
           "--short-len", str(args.short_len), "--embed-count", str(args.embed_count),
           "--embed-dim", str(args.embed_dim), "--server-pid", str(server_pid)]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        print(f"  {name} {scenario}: timed out", file=sys.stderr)
        return None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        print(f"  {name} {scenario}: failed: {tail[0][:200]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(),
        "versions": {d: _version(d) for d in ("llm-connectors", "httpx", "aiohttp", "anyio", "openai", "litellm")},
    }


def summarize(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def collect(results: list[dict[str, Any]], imports: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for name, values in imports.items():
        table.setdefault(name, {})["import"] = summarize(values)
    per: dict[tuple[str, str], list[float]] = {}
    for r in results:
        per.setdefault((r["contender"], r["scenario"]), []).append(r["value"])
        if r["scenario"] == "stream" and r.get("ttft") == r.get("ttft"):  # not NaN
            per.setdefault((r["contender"], "ttft"), []).append(r["ttft"])
        if r["scenario"] == "streams500":
            per.setdefault((r["contender"], "rss"), []).append(r["rss_kb"])
    for (name, key), values in per.items():
        table.setdefault(name, {})[key] = summarize(values)
    return table


def _cell(stat: dict[str, float] | None, scale: float, ref: dict[str, float] | None) -> str:
    if stat is None:
        return DASH

    def fmt(v: float) -> str:
        v *= scale
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"

    text = f"{fmt(stat['median'])} ({fmt(stat['min'])}{DASH}{fmt(stat['max'])})"
    if ref is not None and ref["median"]:
        text += f" {TIMES}{stat['median'] / ref['median']:.2f}"
    return text


def ratio(table: dict[str, dict[str, Any]], a: str, b: str, key: str) -> float | None:
    x, y = table.get(a, {}).get(key), table.get(b, {}).get(key)
    if not x or not y or not y["median"]:
        return None
    return float(x["median"] / y["median"])


def targets(table: dict[str, dict[str, Any]]) -> list[tuple[str, str, float | None, bool | None]]:
    rows: list[tuple[str, str, float | None, bool | None]] = []

    def add(what: str, value: float | None, limit: float, higher: bool) -> None:
        ok = None if value is None else (value >= limit if higher else value <= limit)
        rows.append((what, f"{GE if higher else LE} {limit}", value, ok))

    add("httpx engine: per call / raw httpx", ratio(table, "ours-httpx", "raw-httpx", "seq"), 1.15, False)
    add("httpx engine: chunks/s / raw httpx", ratio(table, "ours-httpx", "raw-httpx", "stream"), 0.85, True)
    add("aiohttp engine: per call / raw aiohttp", ratio(table, "ours-aiohttp", "raw-aiohttp", "seq"), 1.5, False)
    add("aiohttp engine: c=64 throughput / raw aiohttp", ratio(table, "ours-aiohttp", "raw-aiohttp", "c64"), 0.6,
        True)
    add("aiohttp engine: chunks/s / raw aiohttp", ratio(table, "ours-aiohttp", "raw-aiohttp", "stream"), 0.7, True)
    add("import / import httpx", ratio(table, "ours-httpx", "raw-httpx", "import"), 1.3, False)
    add("RSS (httpx engine) / raw httpx", ratio(table, "ours-httpx", "raw-httpx", "rss"), 1.3, False)
    add("RSS (aiohttp engine) / raw httpx", ratio(table, "ours-aiohttp", "raw-httpx", "rss"), 1.3, False)
    for ours in ("ours-httpx", "ours-aiohttp"):
        for other in ("openai-sdk", "litellm"):
            if other not in table or ours not in table:
                continue
            worse = []
            for key, title, _, _, higher in COLUMNS:
                r = ratio(table, ours, other, key)
                if r is not None and (r < 1 if higher else r > 1):
                    worse.append(title)
            rows.append((f"{ours} better than {other} on every column", "all",
                         None, not worse))
            if worse:
                rows[-1] = (rows[-1][0] + f" (not on: {', '.join(worse)})", "all", None, False)
    return rows


def render(table: dict[str, dict[str, Any]], order: Sequence[str], info: dict[str, Any], server_share: float | None,
           command: str) -> str:
    ref = table.get("raw-httpx", {})
    head = "| contender | " + " | ".join(f"{title} ({unit} {UP if hi else DOWN})"
                                         for _, title, _, unit, hi in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name in order:
        row = table.get(name)
        if not row:
            continue
        cells = [_cell(row.get(key), scale, ref.get(key)) for key, _, scale, _, _ in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Cells: median (min{DASH}max over repeats) {TIMES}ratio to raw-httpx. "
                  "\u2193 lower is better, \u2191 higher is better.",
              "", "| target | limit | measured | met |", "|---|---|---|---|"]
    for what, limit, value, ok in targets(table):
        shown = DASH if value is None else f"{TIMES}{value:.3f}"
        lines.append(f"| {what} | {limit} | {shown} | {DASH if ok is None else 'yes' if ok else 'NO'} |")
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    lines += ["", f"Machine: {info['cpu']}, {info['cpus']} CPUs, {info['implementation']} {info['python']}, "
                  f"{info['platform']}.", f"Versions: {versions}.",
              f"Fake server CPU share during measured windows: at most {server_share:.0%} of one core."
              if server_share is not None else "Fake server CPU share: not available.",
              f"Command: `{command}`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, small counts, our and raw clients only")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--contenders", default=None, help=f"comma-separated, from {', '.join(ALL)}")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--provider", default="openai", choices=("openai", "claude", "ollama"),
                        help="wire format (the third-party SDKs run on openai only)")
    parser.add_argument("--stream-len", type=int, default=2000)
    parser.add_argument("--short-len", type=int, default=20)
    parser.add_argument("--embed-count", type=int, default=256)
    parser.add_argument("--embed-dim", type=int, default=1536)
    parser.add_argument("--json", default=None, help="also write every raw result here")
    args = parser.parse_args(argv)
    profile = Profile(args.quick)
    if args.repeats:
        profile.repeats = args.repeats
    wanted = args.contenders.split(",") if args.contenders else list(QUICK_CONTENDERS if args.quick else ALL)
    contenders = []
    for name in wanted:
        if name not in NEEDS:
            parser.error(f"unknown contender {name!r}")
        if importlib.util.find_spec(NEEDS[name]) is None:
            print(f"skipping {name}: {NEEDS[name]} is not installed (pip install -e '.[bench]')", file=sys.stderr)
        elif args.provider != "openai" and name in ("openai-sdk", "litellm"):
            print(f"skipping {name}: openai wire format only", file=sys.stderr)
        else:
            contenders.append(name)
    scenarios = [s for s in args.scenarios.split(",") if s]
    worker_cpu, server_cpu = _cpus()
    info = machine()
    started = time.perf_counter()
    print(f"contenders: {', '.join(contenders)}; {profile.repeats} repeat(s); pinned: worker CPU {worker_cpu}, "
          f"server CPU {server_cpu}", file=sys.stderr)
    imports = measure_imports(contenders, profile.import_reps * profile.repeats)
    results: list[dict[str, Any]] = []
    shares: list[float] = []
    with fake_server(args, server_cpu) as (url, server_pid):
        for rep in range(profile.repeats):
            for scenario in scenarios:
                shift = rep % len(contenders)
                for name in contenders[shift:] + contenders[:shift]:
                    result = run_worker(name, scenario, url, server_pid, worker_cpu, args, profile)
                    if result is None:
                        continue
                    results.append(result)
                    if result.get("server_share") is not None:
                        shares.append(result["server_share"])
            print(f"repeat {rep + 1}/{profile.repeats} done after {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)
    table = collect(results, imports)
    command = "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv)
    print(render(table, contenders, info, max(shares) if shares else None, command.strip()))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "imports": imports, "results": results,
                                               "table": table, "args": vars(args)}, indent=1))


if __name__ == "__main__":
    main()
