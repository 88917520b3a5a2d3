"""Fixtures that run a test module on every (event loop, HTTP engine) pair.

Import them into a test module (``from engine_matrix import anyio_backend, combo, engine``) rather
than registering this as a plugin: a plugin's ``anyio_backend`` would apply to the whole suite.
"""

from __future__ import annotations

import importlib.util

import pytest

HAVE_AIOHTTP = importlib.util.find_spec("aiohttp") is not None
needs_aiohttp = pytest.mark.skipif(not HAVE_AIOHTTP, reason="needs the fast extra (aiohttp)")
COMBOS = [pytest.param(("asyncio", "httpx"), id="asyncio-httpx"),
          pytest.param(("trio", "httpx"), id="trio-httpx"),
          pytest.param(("asyncio", "aiohttp"), id="asyncio-aiohttp", marks=needs_aiohttp)]


@pytest.fixture(params=COMBOS)
def combo(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(combo: tuple[str, str]) -> str:
    return combo[0]


@pytest.fixture
def engine(combo: tuple[str, str]) -> str:
    return combo[1]
