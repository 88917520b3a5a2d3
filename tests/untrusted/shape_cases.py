"""Building malformed provider answers, and what every malformed answer must raise.

A case is a valid answer with one field changed (or removed) at a dotted path; the wrong values
carry :data:`CANARY` wherever they can, and :func:`assert_protocol_error` checks that the error
is a plain :class:`ProtocolError` naming the provider and the field path, and never the canary.
:func:`assert_refused_over_http` plays malformed 200s through a real socket.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from builders import build_connector

from llm_connectors.base import BaseConnector
from llm_connectors.errors import ProtocolError, StreamInterruptedError
from llm_connectors.requests import ChatRequest
from llm_connectors.testing import FakeServer, Reply
from llm_connectors.testing.kit import ScriptedHandler
from llm_connectors.types import ChatResponse

__all__ = ["CANARY", "MISSING", "WRONG_COUNT", "WRONG_OBJECT", "WRONG_TEXT", "assert_protocol_error",
           "assert_refused_over_http", "cases", "decode_stream", "mutated", "raises_protocol_error"]

#: Put into malformed values; no error message may repeat it (an answer can echo a secret).
CANARY = "SECRET-CANARY"
#: As a case's value: remove the field.
MISSING: Any = object()

#: Wrong values where the documentation says a string.
WRONG_TEXT: tuple[Any, ...] = ({"secret": CANARY}, [CANARY], 5, True)
#: Wrong values where it says a count (an integer >= 0).
WRONG_COUNT: tuple[Any, ...] = ("5", -1, True, 1.5, CANARY, {"n": CANARY})
#: Wrong values where it says an object.
WRONG_OBJECT: tuple[Any, ...] = (None, CANARY, [CANARY], 5, True)


def mutated(base: Any, path: str, value: Any) -> Any:
    """A deep copy of ``base`` with ``value`` at ``path`` (``"a.0.b"``; ``""`` is the whole answer)."""
    if not path:
        return copy.deepcopy(value)
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    slot: Any = int(last) if isinstance(target, list) else last
    if value is MISSING:
        del target[slot]
    else:
        target[slot] = value
    return data


def cases(path: str, values: Iterable[Any], expected: str | None = None) -> list[Any]:
    """``pytest.param(path, value, expected)`` per value; ``expected`` defaults to ``$.path``."""
    if expected is None:
        expected = "$." + ".".join(f"[{k}]" if k.isdigit() else k for k in path.split(".")).replace(".[", "[")
    return [pytest.param(path, value, expected, id=f"{path or 'answer'}={_label(value)}") for value in values]


def _label(value: Any) -> str:
    return "MISSING" if value is MISSING else repr(value).replace(CANARY, "CANARY")[:30]


def decode_stream(connector: BaseConnector, request: ChatRequest, events: Iterable[Any]) -> ChatResponse:
    """Framed events (SSE events, parsed NDJSON lines) through a fresh decoder, as the base class drives it."""
    decoder = connector.create_stream_decoder(request)
    for event in events:
        decoder.feed(event)
    decoder.finish()
    return decoder.response()


def assert_protocol_error(error: BaseException, provider: str, expected: str) -> None:
    """A plain ``ProtocolError`` from ``provider`` that says ``expected`` and not the canary."""
    assert type(error) is ProtocolError, f"{type(error).__name__}: {error}"
    assert error.provider == provider
    assert expected in error.message, error.message
    assert CANARY not in str(error) and CANARY not in repr(error)


def raises_protocol_error(call: Callable[[], Any], provider: str, expected: str) -> ProtocolError:
    """Run ``call``, which must raise only a ``ProtocolError`` (any other exception fails the test)."""
    with pytest.raises(ProtocolError) as info:
        call()
    assert_protocol_error(info.value, provider, expected)
    return info.value


async def assert_refused_over_http(provider: str, answer: Reply, first: Reply, later: Reply, *, answer_path: str,
                                   stream_path: str, partial: str) -> None:
    """Malformed 200s from a loopback server, through the connector its wire kit builds.

    ``answer`` is a malformed non-streamed answer; ``first`` a stream malformed in its first event
    (a ``ProtocolError`` as the stream opens); ``later`` one malformed after ``partial`` was
    delivered (a ``StreamInterruptedError`` caused by the ``ProtocolError``). No retry may hide one.
    """
    with FakeServer(ScriptedHandler([answer, first, later])) as server:
        async with build_connector(provider, server.url) as conn:
            with pytest.raises(ProtocolError) as plain:
                await conn.generate_chat(None, "Hi")
            with pytest.raises(ProtocolError) as opening:
                await conn.generate_chat_stream(None, "Hi").collect()
            with pytest.raises(StreamInterruptedError) as interrupted:
                await conn.generate_chat_stream(None, "Hi").collect()
        assert len(server.requests) == 3
    assert_protocol_error(plain.value, provider, answer_path)
    for error in (opening.value, interrupted.value.__cause__):
        assert error is not None
        assert_protocol_error(error, provider, stream_path)
    assert interrupted.value.partial == partial and CANARY not in str(interrupted.value)
