"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from llm_connectors.testing import FakeServer
from llm_connectors.testing.openai_wire import OpenAIFake


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def canary_key() -> str:
    """A unique fake key: tests assert it never shows up in errors, reprs or logs."""
    return f"sk-canary-{uuid.uuid4().hex}"


@pytest.fixture
def openai_fake() -> OpenAIFake:
    return OpenAIFake()


@pytest.fixture
def openai_server(openai_fake: OpenAIFake) -> Iterator[FakeServer]:
    with FakeServer(openai_fake) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_resilience_state() -> Iterator[None]:
    """Breakers, budgets and limiters are process-wide; no test may inherit another's."""
    from llm_connectors.resilience import reset_shared_state

    reset_shared_state()
    yield
    reset_shared_state()
