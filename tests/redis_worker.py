"""One worker process of the multi-process shared-state tests (tests/resilience/test_redis_multiprocess.py).

Run as ``python tests/redis_worker.py '<json config>'``. It builds an OpenAI connector to the
parent's fake server with the parent's Redis, prints ``ready``, waits for the start time (wall
clock, a line on stdin), runs its steps, and prints one JSON line with what happened. Logs of
``llm_connectors`` go to stderr, one record per line, for the parent to count. With
``"record_admissions": true`` it also reports the Redis server time (ms) of every admission the
shared limiter made (``admitted``) and how many it made locally while Redis was away (``local``),
so the parent can count admissions per window on one clock, whatever the hosts' load.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from typing import Any

import anyio

import llm_connectors as lc
from llm_connectors.testing.openai_wire import OpenAIWireKit

USER = [{"role": "user", "content": "Hi"}]


async def _sleep_until(wall: float) -> None:
    await anyio.sleep(max(0.0, wall - time.time()))


async def load(conn: Any, step: dict[str, Any], t0: float, out: dict[str, Any]) -> None:
    """``tasks`` loops calling as fast as the limits allow, from ``start`` to ``end``."""
    end = t0 + step["end"]
    errors: Counter[str] = Counter()
    ok = 0

    async def loop() -> None:
        nonlocal ok
        for _ in range(1_000_000):  # bounded; the end time stops it long before
            left = end - time.time()
            if left <= 0:
                return
            with anyio.move_on_after(left):  # stop waiting for the limiter at the end: not an error
                try:
                    await conn.generate_chat("m", USER)
                    ok += 1
                except lc.LLMConnectorError as exc:
                    errors[type(exc).__name__] += 1

    await _sleep_until(t0 + step["start"])
    async with anyio.create_task_group() as tg:
        for _ in range(step["tasks"]):
            tg.start_soon(loop)
    out["ok"] = out.get("ok", 0) + ok
    out.setdefault("errors", Counter()).update(errors)


async def calls(conn: Any, step: dict[str, Any], t0: float, out: dict[str, Any]) -> None:
    """``count`` calls one after another (``interval`` apart) or ``concurrent`` at once; log each outcome."""
    await _sleep_until(t0 + step["start"])
    log = out.setdefault("calls", [])

    async def one() -> None:
        started = time.time()
        try:
            await conn.generate_chat("m", USER)
            outcome = "ok"
        except lc.LLMConnectorError as exc:
            outcome = type(exc).__name__
        log.append([started, time.time(), outcome])

    if step.get("concurrent"):
        async with anyio.create_task_group() as tg:
            for _ in range(step["concurrent"]):
                tg.start_soon(one)
        return
    end = t0 + step.get("end", 1e12)
    for _ in range(step.get("count", 1_000_000)):
        if time.time() >= end:
            return
        await one()
        await anyio.sleep(step.get("interval", 0.0))


def record_admissions(out: dict[str, Any]) -> None:
    """Wrap the shared limiter's admission step to note where and when each call was admitted."""
    from llm_connectors.resilience.shared_limiter import SharedPermit, SharedRateLimiter

    admitted: list[float] = out.setdefault("admitted", [])
    out["local"] = 0
    original = SharedRateLimiter._try

    async def recording(self: SharedRateLimiter, tokens: int, now: float) -> Any:
        permit, wait, reason = await original(self, tokens, now)
        if isinstance(permit, SharedPermit) and permit.admitted_at is not None:
            admitted.append(permit.admitted_at)
        elif permit is not None:
            out["local"] += 1
        return permit, wait, reason

    SharedRateLimiter._try = recording  # type: ignore[method-assign]


async def main(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": config["name"]}
    if config.get("record_admissions"):
        record_admissions(out)
    conn = OpenAIWireKit().make_connector(
        config["fake"], headers={"x-worker": config["name"]}, retry=False, timeout=config.get("timeout", 300.0),
        rate_limit=config.get("rate_limit"), circuit_breaker=config.get("circuit_breaker", False),
        shared_state=config["redis"])
    if config.get("warm"):  # open the pool's connections now, so the measured run starts warm
        async with anyio.create_task_group() as tg:
            for _ in range(config["warm"]):
                tg.start_soon(conn.health_check)
    print("ready", flush=True)
    t0 = float(await anyio.to_thread.run_sync(sys.stdin.readline))
    async with conn:
        for step in config["steps"]:
            await {"load": load, "calls": calls}[step["kind"]](conn, step, t0, out)
        out["stats"] = conn.stats()[conn.provider]
    return out


if __name__ == "__main__":
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("llm_connectors")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    cfg = json.loads(sys.argv[1])
    result = anyio.run(main, cfg, backend=cfg.get("backend", "asyncio"))
    print(json.dumps(result, default=str), flush=True)
