"""Reading one response: bounded bodies, deadlines on anyio's clock, the running loop's clock.

Helpers for :mod:`.sender` that hold no state: each takes the response or the deadline it acts on.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .._asynclib import current_loop_token
from ..errors import BuiltinTimeoutError, ProtocolError
from .decode import BoundedDecoder
from .engines import EngineResponse

__all__ = ["content_encoding", "deadline_scope", "Deadline", "loop_clock", "read_bounded", "reader_of"]


async def _read_plain(response: EngineResponse, limit: int, provider: str | None) -> bytes:
    """The common case: an uncompressed body, read with only a size check."""
    declared = response.header("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ProtocolError(f"response body of {declared} bytes is over the {limit}-byte limit", provider=provider)
    body = response.in_memory()
    if body is None:
        pieces: list[bytes] = []
        size = 0
        while piece := await response.read():
            size += len(piece)
            if size > limit:
                raise ProtocolError(f"response body is over the {limit}-byte limit", provider=provider)
            pieces.append(piece)
            if response.at_end():
                break
        body = b"".join(pieces)
    if len(body) > limit:
        raise ProtocolError(f"response body is over the {limit}-byte limit", provider=provider)
    return body


def content_encoding(response: EngineResponse) -> str | None:
    """The body's content-encoding, unless a client already decoded the body into memory."""
    encoding = response.header("content-encoding")
    return encoding if encoding and encoding != "identity" and response.in_memory() is None else None


async def read_bounded(response: EngineResponse, limit: int, provider: str | None = None) -> bytes:
    """Read and decode a body, refusing to hold more than ``limit`` decoded bytes."""
    encoding = content_encoding(response)
    if encoding is None:
        return await _read_plain(response, limit, provider)
    decoder = BoundedDecoder(encoding, limit, provider)
    chunks: list[bytes] = []
    while piece := await response.read():
        chunks.append(decoder.feed(piece))
    chunks.append(decoder.flush())
    return b"".join(chunks)


def loop_clock() -> Callable[[], float]:
    """``anyio.current_time`` without its backend lookup on every call (two calls per read of a
    stream, a tenth of a stream's CPU): the running loop's own clock, which is what anyio reads."""
    token = current_loop_token()
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and isinstance(token, asyncio.AbstractEventLoop):
        loop_time: Callable[[], float] = token.time
        return loop_time
    import trio

    return trio.current_time


def _once(body: bytes) -> Callable[[], Awaitable[bytes]]:
    """A reader handing over a body already in memory, then its end."""
    pieces = [b"", body] if body else [b""]

    async def read() -> bytes:
        return pieces.pop() if pieces else b""

    return read


def reader_of(response: EngineResponse) -> Callable[[], Awaitable[bytes]]:
    """A read function for the body: the engine's, or one handing over a body already in memory."""
    in_memory = response.in_memory()
    return response.read if in_memory is None else _once(in_memory)


class Deadline:
    """Raise the builtin ``TimeoutError`` if the body is still running at ``deadline`` (anyio's clock).

    What ``anyio.fail_after`` does, without its generator-based context manager on the hot path.
    """

    __slots__ = ("_scope",)

    def __init__(self, deadline: float) -> None:
        self._scope = anyio.CancelScope(deadline=deadline)

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(self, *exc: Any) -> bool:
        suppressed = bool(self._scope.__exit__(*exc))
        if self._scope.cancelled_caught:  # only our own deadline cancels this scope
            raise BuiltinTimeoutError
        return suppressed


_NO_DEADLINE: contextlib.nullcontext[None] = contextlib.nullcontext()


def deadline_scope(deadline: float | None) -> Deadline | contextlib.nullcontext[None]:
    """A deadline scope until ``deadline`` (anyio's clock), or nothing when there is none."""
    return _NO_DEADLINE if deadline is None else Deadline(deadline)
