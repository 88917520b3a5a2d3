"""Shared state across real OS processes and a real redis-server (issue #6; RELIABILITY.md §8 L4-L6, B9).

Each worker is a separate Python process (tests/redis_worker.py) with its own connector, all
talking to one fake provider started here on 127.0.0.1, which records when each request arrives.
The PR tier counts admissions per window on the Redis server's clock (what load cannot change);
the long runs that look at arrivals as the provider sees them (40 s, a rolling minute, 3 minutes)
are nightly.
"""

from __future__ import annotations

import bisect
import json
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llm_connectors.testing import FakeServer, Reply, Request
from llm_connectors.testing.openai_wire import OpenAIFake, openai_chat_json

if TYPE_CHECKING:
    from redis_server import RedisServer

pytest_plugins = ["redis_server"]
pytestmark = pytest.mark.redis

WORKER = Path(__file__).parents[1] / "redis_worker.py"


class Recorder:
    """A fake-provider handler that notes when each request arrives (monotonic) and from which worker."""

    def __init__(self, reply: Callable[[Request], Reply]) -> None:
        self.reply = reply
        self.arrivals: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        if request.path.endswith("/chat/completions"):  # warm-up health checks are not counted
            with self._lock:
                self.arrivals.append((time.monotonic(), request.headers.get("x-worker", "?")))
        return self.reply(request)

    def times(self, worker: str | None = None, since: float = -1e18, until: float = 1e18) -> list[float]:
        with self._lock:
            return sorted(t for t, w in self.arrivals if (worker is None or w == worker) and since <= t < until)


class Fleet:
    """Worker processes, started together at one wall-clock instant."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        self.names = [c["name"] for c in configs]
        self.logs = {name: tempfile.TemporaryFile() for name in self.names}  # noqa: SIM115 - closed in close()
        self.procs = {c["name"]: subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(c)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.logs[c["name"]], text=True, cwd=str(WORKER.parent)) for c in configs}

    def start(self, delay: float = 0.3, ready_within: float = 90.0) -> tuple[float, float]:
        """Wait until every worker is ready, then start them all ``delay`` s from now.

        Returns the start as (wall clock, monotonic clock).
        """
        deadline = time.monotonic() + ready_within
        for name, proc in self.procs.items():
            assert proc.stdout is not None and proc.stdin is not None
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = proc.stdout.readline() if ready else ""
            assert line.strip() == "ready", f"worker {name} did not start: {line!r} {self.log(name)[-2000:]}"
        wall, mono = time.time() + delay, time.monotonic() + delay
        for proc in self.procs.values():
            assert proc.stdin is not None
            proc.stdin.write(f"{wall}\n")
            proc.stdin.flush()
        return wall, mono

    def results(self, timeout: float) -> dict[str, dict[str, Any]]:
        out = {}
        deadline = time.monotonic() + timeout
        for name, proc in self.procs.items():
            stdout, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert proc.returncode == 0, f"worker {name} exited {proc.returncode}: {self.log(name)[-3000:]}"
            out[name] = json.loads(stdout.strip().splitlines()[-1])
        return out

    def log(self, name: str) -> str:
        file = self.logs[name]
        file.seek(0)
        return str(file.read().decode(errors="replace"))

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for file in self.logs.values():
            file.close()


@pytest.fixture
def fleet() -> Iterator[Callable[[list[dict[str, Any]]], Fleet]]:
    made: list[Fleet] = []

    def make(configs: list[dict[str, Any]]) -> Fleet:
        made.append(Fleet(configs))
        return made[-1]

    yield make
    for f in made:
        f.close()


def max_in_window(times: list[float], width: float) -> int:
    """The most arrivals in any half-open window [t, t + width)."""
    return max((bisect.bisect_left(times, t + width) - i for i, t in enumerate(times)), default=0)


def count(times: list[float], since: float, until: float) -> int:
    return bisect.bisect_left(times, until) - bisect.bisect_left(times, since)


# -- L4: 8 processes share one 600 rpm limit ------------------------------------------------------

RPM = 600


def run_rpm_fleet(fleet: Callable[[list[dict[str, Any]]], Fleet], shared_url: str | None, *, seconds: float,
                  processes: int = 8, tasks: int = 8) -> tuple[list[float], float, dict[str, dict[str, Any]]]:
    recorder = Recorder(OpenAIFake())
    with FakeServer(recorder) as fake:
        group = fleet([{"name": f"w{i}", "fake": fake.url, "redis": shared_url, "warm": tasks,
                        "rate_limit": {"requests_per_minute": RPM},
                        "steps": [{"kind": "load", "start": 0.0, "end": seconds, "tasks": tasks}]}
                       for i in range(processes)])
        _, mono_start = group.start()
        results = group.results(timeout=seconds + 60)
    return recorder.times(), mono_start, results


def excess_over_rate(times: list[float], per_second: float) -> float:
    """The most admissions any window holds beyond ``per_second * width``: the burst the fleet took."""
    return max((j - i + 1 - per_second * (times[j] - times[i]) for i in range(len(times))
                for j in range(i, len(times))), default=0.0)


def test_l4_pr_four_processes_pace_as_one_on_redis_time(fleet: Callable[[list[dict[str, Any]]], Fleet],
                                                         shared_url: str) -> None:
    """4 processes x 4 tasks share 1,200 rpm with a burst of 3 for 4 s, counted on Redis's clock:
    in every window w at most 20 * w + 3 admissions, and the rate is used."""
    rpm, burst, seconds = 1200, 3, 4.0
    with FakeServer(Recorder(OpenAIFake())) as fake:
        group = fleet([{"name": f"w{i}", "fake": fake.url, "redis": f"{shared_url}&window_margin=0", "warm": 4,
                        "record_admissions": True, "rate_limit": {"requests_per_minute": rpm, "burst": burst},
                        "steps": [{"kind": "load", "start": 0.0, "end": seconds, "tasks": 4}]}
                       for i in range(4)])
        group.start()
        results = group.results(timeout=seconds + 60)
    assert all(not r.get("errors") and r["local"] == 0 for r in results.values()), results
    admitted = sorted(t / 1000 for r in results.values() for t in r["admitted"])
    span = admitted[-1] - admitted[0]
    worst = excess_over_rate(admitted, rpm / 60)
    print(f"\nL4 (PR): {len(admitted)} admissions by 4 processes over {span:.2f} s of Redis time; most beyond "
          f"the rate in any window {worst:.2f} (burst {burst}); {len(admitted) / span * 60:.0f} rpm")
    assert worst <= burst + 1e-6  # 0 violations, in every window
    assert len(admitted) - burst >= 0.9 * rpm / 60 * span  # the fleet uses the rate
    assert all(r["ok"] == len(r["admitted"]) for r in results.values())


@pytest.mark.nightly
def test_l4_eight_processes_never_exceed_600_rpm_in_any_rolling_minute(
        fleet: Callable[[list[dict[str, Any]]], Fleet], shared_url: str) -> None:
    seconds = 68.0  # a full minute, and part of the next
    times, start, results = run_rpm_fleet(fleet, shared_url, seconds=seconds)
    assert all(not r.get("errors") for r in results.values()), {n: r.get("errors") for n, r in results.items()}
    assert all(r["stats"]["shared_state"]["mode"] == "shared" for r in results.values())
    worst = max_in_window(times, 60.0)
    first_minute = count(times, start, start + 60.0)
    last_minute = count(times, start + seconds - 60.0, start + seconds)
    print(f"\nL4: {len(times)} requests from {len(results)} processes in {seconds:.0f} s; most in any rolling "
          f"minute {worst}; first minute {first_minute}, last minute {last_minute}")
    assert worst <= RPM  # never over, in any window, as the provider sees arrivals
    assert first_minute >= 0.95 * RPM and last_minute >= 0.95 * RPM  # and the limit is used, minute after minute
    assert sum(r["ok"] for r in results.values()) == len(times)


@pytest.mark.nightly
@pytest.mark.parametrize(("processes", "shared", "backend"), [
    (8, True, "asyncio"), (1, True, "asyncio"), (1, True, "trio"), (1, False, "asyncio"), (1, False, "trio")],
    ids=["8-processes-redis", "1-process-redis-asyncio", "1-process-redis-trio", "1-process-local-asyncio",
         "1-process-local-trio"])
def test_l4_nightly_120_rpm_for_40_s_paces_every_10_s_window(
        fleet: Callable[[list[dict[str, Any]]], Fleet], shared_url: str, processes: int, shared: bool,
        backend: str) -> None:
    """Issue 19's measurement: 120 rpm shared for 40 s. A rolling window limiter let all 120 through in
    the first 10 s; paced, no 10 s window holds more than 20 + burst as the provider sees arrivals."""
    rpm, burst, seconds = 120, 1, 40.0
    recorder = Recorder(OpenAIFake())
    with FakeServer(recorder) as fake:
        group = fleet([{"name": f"w{i}", "fake": fake.url, "redis": shared_url if shared else None, "warm": 8,
                        "backend": backend, "record_admissions": shared,
                        "rate_limit": {"requests_per_minute": rpm, "burst": burst},
                        "steps": [{"kind": "load", "start": 0.0, "end": seconds, "tasks": 8}]}
                       for i in range(processes)])
        _, start = group.start()
        results = group.results(timeout=seconds + 60)
    assert all(not r.get("errors") for r in results.values()), {n: r.get("errors") for n, r in results.items()}
    times = recorder.times()
    windows = [count(times, start + k * 10.0, start + (k + 1) * 10.0) for k in range(4)]
    worst = max_in_window(times, 10.0)
    rate = len(times) / seconds * 60
    print(f"\nL4 nightly ({processes} process(es), {'redis' if shared else 'local'}, {backend}): {len(times)} requests "
          f"in {seconds:.0f} s = {rate:.1f} rpm ({rate / rpm:.1%}); per 10 s window {windows}; most in any rolling "
          f"10 s window {worst} (limit {rpm // 6} + burst {burst})")
    assert worst <= rpm // 6 + burst
    assert len(times) >= 0.95 * rpm * seconds / 60
    if shared:
        admitted = sorted(t / 1000 for r in results.values() for t in r["admitted"])
        assert excess_over_rate(admitted, rpm / 60) <= burst + 1e-6


def test_l4_control_without_shared_state_the_check_fails(fleet: Callable[[list[dict[str, Any]]], Fleet]) -> None:
    """The detector works: the same fleet without shared state goes far over the rate in a few seconds."""
    times, _, results = run_rpm_fleet(fleet, None, seconds=4.0, processes=3, tasks=4)
    assert max_in_window(times, 4.0) > RPM * 4 / 60 + 1  # 3 processes, each at the full rate
    assert all(r["ok"] <= RPM * 4 / 60 + 2 for r in results.values())  # each process alone keeps to its own


# -- B9: a circuit opened by one process stops the others, and half-open lets one probe through ----

def test_b9_breaker_propagates_within_a_second_and_one_probe_goes_out(
        fleet: Callable[[list[dict[str, Any]]], Fleet], shared_url: str) -> None:
    reset = 4.0
    start = [0.0]  # wall clock start, set below

    def reply(request: Request) -> Reply:
        elapsed = time.time() - start[0]
        if elapsed < reset:  # the provider fails for worker A only (B keeps succeeding until told)
            if request.headers.get("x-worker") == "A":
                return Reply.json({"error": {"message": "down", "type": "server_error"}}, 503)
            return Reply.json(openai_chat_json("fine"))
        # recovered, slowly: the probe is still in flight while the others ask
        body = json.dumps(openai_chat_json("up")).encode()
        return Reply(200, {"content-type": "application/json"}, chunks=[0.5, body])

    recorder = Recorder(reply)
    breaker = {"failure_threshold": 5, "reset_timeout": reset}
    probe_at = reset + 1.5
    with FakeServer(recorder) as fake:
        common = {"fake": fake.url, "redis": shared_url, "circuit_breaker": breaker}
        group = fleet([
            {**common, "name": "A", "steps": [{"kind": "calls", "start": 0.5, "count": 6},
                                             {"kind": "calls", "start": probe_at, "concurrent": 10}]},
            {**common, "name": "B", "steps": [{"kind": "calls", "start": 0.0, "end": 3.0, "interval": 0.02},
                                             {"kind": "calls", "start": probe_at, "concurrent": 10}]},
            {**common, "name": "C", "steps": [{"kind": "calls", "start": probe_at, "concurrent": 10}]},
            {**common, "name": "D", "steps": [{"kind": "calls", "start": probe_at, "concurrent": 10}]},
        ])
        start[0], mono = group.start()
        results = group.results(timeout=60)
    a_calls, b_calls = results["A"]["calls"], results["B"]["calls"]
    assert [c[2] for c in a_calls[:6]] == ["ProviderError"] * 5 + ["CircuitOpenError"]
    opened = a_calls[4][1]  # wall time when A's 5th failure came back: its circuit opened then
    refused = [c for c in b_calls if c[2] == "CircuitOpenError" and c[1] < start[0] + 3.0]
    assert refused, b_calls[-5:]
    latency = refused[0][0] - opened
    b_sent_late = count(recorder.times("B"), mono + (opened - start[0]) + 1.0, mono + reset)
    print(f"\nB9: B refused {latency * 1000:.0f} ms after A opened the circuit; B requests sent from 1 s after "
          f"the opening until the reset: {b_sent_late}")
    assert latency <= 1.0
    assert b_sent_late == 0
    assert all(c[2] == "CircuitOpenError" for c in b_calls if c[0] > opened + 1.0 and c[0] < start[0] + 3.0)
    # Half-open: 40 calls from 4 processes at once; exactly one reaches the provider.
    burst = [c for name in "ABCD" for c in results[name]["calls"] if c[0] >= start[0] + probe_at - 0.1]
    assert len(burst) == 40
    assert sorted(c[2] for c in burst).count("ok") == 1, sorted(c[2] for c in burst)
    assert count(recorder.times(), mono + probe_at - 0.1, mono + probe_at + 5) == 1


# -- L5: a 429's Retry-After seen by one process pauses every process -------------------------------

@pytest.mark.parametrize("rate_limit", [{"requests_per_minute": 100_000}, None], ids=["limited", "cooldown-only"])
def test_l5_retry_after_pauses_every_process(fleet: Callable[[list[dict[str, Any]]], Fleet], shared_url: str,
                                            rate_limit: dict[str, int] | None) -> None:
    start = [0.0]
    told: list[float] = []

    def reply(request: Request) -> Reply:
        if request.headers.get("x-worker") == "A" and not told:
            told.append(time.monotonic())
            return Reply.json({"error": {"message": "slow down", "type": "rate_limit_error"}}, 429,
                              headers={"retry-after": "2"})
        return Reply.json(openai_chat_json("ok"))

    recorder = Recorder(reply)
    with FakeServer(recorder) as fake:
        common = {"fake": fake.url, "redis": shared_url, "rate_limit": rate_limit}
        group = fleet([
            {**common, "name": "A", "steps": [{"kind": "calls", "start": 1.0, "count": 1}]},
            {**common, "name": "B", "steps": [{"kind": "calls", "start": 0.0, "end": 5.0, "interval": 0.01}]},
        ])
        start[0], _ = group.start()
        results = group.results(timeout=60)
    assert [c[2] for c in results["A"]["calls"]] == ["RateLimitError"]
    assert all(c[2] == "ok" for c in results["B"]["calls"])  # B waited; it was not refused
    b = recorder.times("B")
    # Within one status refresh (0.5 s) when only the cooldown is shared; at once when a limit is set
    # (the admission script itself reads the cooldown).
    grace = 0.1 if rate_limit else 0.6
    paused = count(b, told[0] + grace, told[0] + 2.0 - 0.05)
    resumed = [t for t in b if t >= told[0] + 2.0 - 0.05]
    print(f"\nL5 ({'limited' if rate_limit else 'cooldown only'}): B requests during the 2 s pause after "
          f"{grace:.1f} s: {paused}; B resumed {resumed[0] - told[0]:.2f} s after the 429")
    assert paused == 0
    assert resumed and resumed[0] - told[0] <= 3.0


# -- L6: Redis killed mid-run and restarted ----------------------------------------------------------

def test_l6_redis_killed_and_restarted_mid_run(fleet: Callable[[list[dict[str, Any]]], Fleet],
                                               own_redis: RedisServer) -> None:
    limit, workers = 240, 4
    share = limit // workers
    kill_at, restart_at, seconds = 3.0, 8.0, 13.0
    recorder = Recorder(OpenAIFake())
    url = f"{own_redis.url}?key_prefix=l6"
    with FakeServer(recorder) as fake:
        group = fleet([{"name": f"w{i}", "fake": fake.url, "redis": url, "rate_limit": {"requests_per_minute": limit},
                        "circuit_breaker": True,
                        "steps": [{"kind": "load", "start": 0.0, "end": seconds, "tasks": 4}]}
                       for i in range(workers)])
        wall, mono = group.start()
        from llm_connectors.resilience.shared import SharedState, scope_for

        procs_key = scope_for(SharedState.from_url(url), "openai", fake.url + "/v1").processes
        time.sleep(max(0.0, wall + kill_at - time.time()))
        own_redis.kill()
        time.sleep(max(0.0, wall + restart_at - time.time()))
        restarted = time.monotonic()  # counted from launching it, its own start-up included
        own_redis.start()
        client = own_redis.client()
        resumed = None
        for _ in range(400):  # bounded: 400 x 10 ms
            if client.zcard(procs_key) >= workers:
                resumed = time.monotonic() - restarted
                break
            time.sleep(0.01)
        in_redis = client.exists(procs_key.replace(":procs", ":rl:req:tat"))  # (read while the load runs)
        results = group.results(timeout=seconds + 60)
        client.close()
        logs = {name: group.log(name) for name in group.names}
    assert all(not r.get("errors") for r in results.values()), {n: r.get("errors") for n, r in results.items()}
    for log in logs.values():
        assert log.count("WARNING llm_connectors.shared shared state at") == 1, log  # degraded mode, logged once
        assert "is reachable again" in log, log
    times = recorder.times()
    print(f"\nL6: {len(times)} requests; shared accounting resumed by all {workers} processes "
          f"{resumed if resumed is None else round(resumed, 2)} s after Redis restarted")
    assert resumed is not None and resumed <= 2.0
    degraded = restart_at - kill_at - 0.3
    for i in range(workers):  # while Redis was away, each process paced itself at its share
        during = count(recorder.times(f"w{i}"), mono + kill_at + 0.3, mono + restart_at)
        assert during <= share / 60 * degraded + 2, (i, during)
    assert in_redis == 1  # the restarted Redis paces the fleet again
    assert max_in_window(times, 10.0) <= limit / 6 + workers + 2  # an outage costs at most a burst per process


# -- nightly: the full L4 load ---------------------------------------------------------------------

@pytest.mark.nightly
def test_l4_nightly_eight_processes_fifty_tasks_three_minutes_rpm_and_tpm(
        fleet: Callable[[list[dict[str, Any]]], Fleet], shared_url: str) -> None:
    seconds, tpm = 180.0, 200_000
    recorder = Recorder(OpenAIFake())
    with FakeServer(recorder) as fake:
        group = fleet([{"name": f"w{i}", "fake": fake.url, "redis": shared_url,
                        "rate_limit": {"requests_per_minute": RPM, "tokens_per_minute": tpm,
                                       "default_output_tokens": 300},
                        "steps": [{"kind": "load", "start": 0.0, "end": seconds, "tasks": 50}]}
                       for i in range(8)])
        _, start = group.start()
        results = group.results(timeout=seconds + 120)
    times = recorder.times()
    assert all(not r.get("errors") for r in results.values())
    assert max_in_window(times, 60.0) <= RPM
    assert min(count(times, start + k * 60.0, start + (k + 1) * 60.0) for k in range(3)) >= 0.95 * RPM

