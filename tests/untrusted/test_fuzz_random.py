"""Random mutations of valid answers (hypothesis), judged by the same oracle as the scripted table.

Each example takes one template (provider and mode) and applies one to three random operations:
replace the value at a random JSON path with a value of another type (random JSON, odd numbers,
``NaN``, a lone surrogate, the configured key), put ``null`` in, delete a key or an element,
duplicate a stream event; then, one time in four, cuts the bytes at a random offset, cleanly or by
a connection reset. Each example runs on asyncio and trio (httpx, which must agree) and on aiohttp.

* PR tier: a few examples per template, derandomized and without a database (the same examples
  every run, on every machine).
* Nightly: 600 random examples per template, recorded fixtures included (each on three pairs).

A problem that is an instance of a finding already pinned by a strict xfail elsewhere
(``harness_findings.KNOWN_PROBLEMS``) is noted, not failed on; any other problem fails the example.
"""

from __future__ import annotations

import pytest
from harness_findings import known_problem
from harness_mutations import Mutant, mutant_strategy, mutated_case
from harness_oracle import FUZZ_KEY, every_pair, judge, parity_problems, run_sync, scrubbed
from harness_server import (
    RawHTTPServer,
    raw_server as raw_server,  # the fixture
)
from harness_templates import Template, templates
from hypothesis import HealthCheck, Phase, event, given, settings, strategies as st

PR_EXAMPLES = 8
NIGHTLY_EXAMPLES = 600
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
# No "explain" phase: it parses source with `ast`, which deep in a stack trips CPython 3.11.7 (gh-106905:
# "AST constructor recursion depth mismatch") and turns every later failure report into an INTERNALERROR.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]


def _check(template: Template, mutant: Mutant, server: RawHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    """The example on every (loop, engine) pair: no problem the oracle does not already know, the loops agreeing.

    The examples are drawn outside any event loop and each run starts its own (``anyio.run``), so
    hypothesis's StopTest never crosses a task and the stack stays shallow (see ``_PHASES``)."""
    case = mutated_case(template, mutant)
    outcomes = {f"{backend}/{engine}": run_sync(server, case, FUZZ_KEY, caplog, backend=backend, engine=engine)
                for backend, engine in every_pair()}
    problems = []
    for label, outcome in outcomes.items():
        for problem in judge(case, outcome, FUZZ_KEY):
            finding = known_problem(f"{case.id}: {problem}")
            if finding is None:
                problems.append(f"{label}: {problem}")
            else:
                event(f"known library finding: {finding}")
        event(f"outcome: {type(outcome.error).__name__ if outcome.error else 'success'}")
    problems += parity_problems({label: o for label, o in outcomes.items() if label.endswith("/httpx")},
                                exact=not case.racy)
    if problems:
        raise AssertionError(scrubbed(f"{case.id}: " + " || ".join(problems), FUZZ_KEY))


@pytest.mark.parametrize("template", [pytest.param(t, id=t.id) for t in templates()])
@settings(max_examples=PR_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=_HEALTH, phases=_PHASES)
@given(data=st.data())
def test_random_mutation(template: Template, data: st.DataObject, raw_server: RawHTTPServer,
                         caplog: pytest.LogCaptureFixture) -> None:
    _check(template, data.draw(mutant_strategy(template), label="mutant"), raw_server, caplog)


@pytest.mark.nightly
@pytest.mark.parametrize("template", [pytest.param(t, id=t.id) for t in templates(fixtures=True)])
@settings(max_examples=NIGHTLY_EXAMPLES, deadline=None, database=None, suppress_health_check=_HEALTH,
          phases=_PHASES, print_blob=True)
@given(data=st.data())
def test_random_mutation_nightly(template: Template, data: st.DataObject, raw_server: RawHTTPServer,
                                 caplog: pytest.LogCaptureFixture) -> None:
    _check(template, data.draw(mutant_strategy(template), label="mutant"), raw_server, caplog)
