"""Provider batch jobs at scale (nightly): 10,000 requests round-trip through each provider's fake with
every result matched to its custom_id, and a 100,000-line results file read in a new process (the job
resumed from its id) with bounded memory, the RSS measured in that process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from builders import build_connector

import llm_connectors as lc
from llm_connectors.testing import FakeServer
from llm_connectors.testing.claude_batch_wire import ClaudeBatchFake
from llm_connectors.testing.claude_wire import ClaudeFake
from llm_connectors.testing.kit import TEST_KEY
from llm_connectors.testing.mistral_batch_wire import MistralBatchFake
from llm_connectors.testing.openai_batch_wire import OpenAIBatchFake

pytestmark = [pytest.mark.nightly]

FAKES = {"claude": ClaudeBatchFake, "openai": OpenAIBatchFake, "mistral": MistralBatchFake}


@pytest.mark.anyio
@pytest.mark.parametrize("provider", sorted(FAKES))
async def test_ten_thousand_requests_round_trip(provider: str) -> None:
    items = [{"custom_id": f"item-{i}", "messages": f"Question {i}", "max_tokens": 16} for i in range(10_000)]
    with FakeServer(FAKES[provider](polls=1)) as server:
        async with build_connector(provider, server.url) as conn:
            job = await (await conn.submit_batch(items)).wait(poll_interval=0.001, timeout=120)
            results = {cid: r async for cid, r in job.results()}
    assert job.status == "completed" and job.counts.succeeded == 10_000
    assert set(results) == {item["custom_id"] for item in items}
    assert all(isinstance(r, lc.ChatResponse) for r in results.values())
    priced = [lc.estimate_cost(provider, r.model, r.usage, batch=True) for r in results.values()]
    assert job.estimated_cost == pytest.approx(sum(p or 0 for p in priced))


_CHILD = textwrap.dedent("""
    import json, resource, sys
    import anyio
    from llm_connectors.connectors.claude import ClaudeConnector

    async def main():
        conn = ClaudeConnector(api_key=sys.argv[2], base_url=sys.argv[1], retry=False)
        job = await conn.get_batch(sys.argv[3])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        count, ids = 0, set()
        async for custom_id, result in job.results():
            count += 1
            ids.add(custom_id)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await conn.aclose()
        print(json.dumps({"count": count, "distinct": len(ids), "status": job.status,
                          "growth_kib": after - before, "cost": job.estimated_cost}))

    anyio.run(main)
""")


def test_a_hundred_thousand_line_results_file_streams_in_bounded_memory() -> None:
    text = "lorem ipsum " * 100  # about 1.2 kB of answer per line: a file of well over 100 MB
    fake = ClaudeBatchFake(ClaudeFake(text), polls=0)
    params = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
    job = fake.add_job([(f"r{i}", params) for i in range(100_000)])
    with FakeServer(fake) as server:
        done = subprocess.run([sys.executable, "-c", _CHILD, server.url, TEST_KEY, job.id],
                              capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["count"] == report["distinct"] == 100_000 and report["status"] == "completed"
    assert report["growth_kib"] < 40 * 1024, report  # the file is > 100 MB; the set of ids is ~8 MB of it
    assert report["cost"] > 0
