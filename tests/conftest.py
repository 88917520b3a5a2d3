"""Shared fixtures: every async test runs on asyncio and on trio; no key ever leaks.

The canary scan (RELIABILITY.md §8 X1): kits give connectors ``TEST_KEY`` and the
``canary_key`` fixture hands out more unique keys. For the whole session every log record (at
DEBUG, including httpx and httpcore), every warning and every failure report is searched for
any of them, raw, URL-encoded or base64; a hit fails the run.
"""

from __future__ import annotations

import base64
import logging
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest

from llm_connectors.testing import FakeServer
from llm_connectors.testing.kit import TEST_KEY
from llm_connectors.testing.openai_wire import OpenAIFake

# Runs the provider and resilience suites on both HTTP engines and pins everything else to httpx.
pytest_plugins = ["transport_plugin"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


_CANARIES: set[str] = set()
_LEAKS: list[str] = []
_WATCHED_LOGGERS = ("llm_connectors", "httpx", "httpcore", "tenacity", "pybreaker", "asyncio")


def _watch(key: str) -> str:
    _CANARIES.update({key, urllib.parse.quote(key, safe=""), base64.b64encode(key.encode()).decode()})
    return key


def _leaked(text: str) -> str | None:
    return next((c for c in _CANARIES if c in text), None)


class _CanaryHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += logging.Formatter().formatException(record.exc_info)
        except Exception:  # a record that cannot be formatted cannot leak either
            return
        hit = _leaked(text)
        if hit:
            _LEAKS.append(f"log {record.name}: {text[:200]!r}")


_handler = _CanaryHandler(logging.DEBUG)


def pytest_sessionstart(session: pytest.Session) -> None:
    _watch(TEST_KEY)
    logging.getLogger().addHandler(_handler)
    for name in _WATCHED_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and _leaked(str(report.longrepr)):
        _LEAKS.append(f"failure report of {report.nodeid}")


def pytest_warning_recorded(warning_message: Warning, when: str, nodeid: str, location: object) -> None:
    if _leaked(str(warning_message)):
        _LEAKS.append(f"warning in {nodeid}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger().removeHandler(_handler)
    if _LEAKS:
        print("\nAPI KEY LEAK: a canary key appeared in:\n  " + "\n  ".join(_LEAKS[:20]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def canary_key() -> str:
    """A unique fake key: the session-wide scan fails the run if it shows up in a log or failure."""
    return _watch(f"sk-canary-{uuid.uuid4().hex}")


@pytest.fixture
def openai_fake() -> OpenAIFake:
    return OpenAIFake()


@pytest.fixture
def openai_server(openai_fake: OpenAIFake) -> Iterator[FakeServer]:
    with FakeServer(openai_fake) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_resilience_state() -> Iterator[None]:
    """Breakers, budgets, limiters and the once-per-process deprecation warnings are process-wide; no
    test may inherit another's (a test calling a deprecated model sees its warning whatever ran before)."""
    from llm_connectors.catalog import checks
    from llm_connectors.resilience import reset_shared_state

    reset_shared_state()
    checks._warned.clear()
    yield
    reset_shared_state()
