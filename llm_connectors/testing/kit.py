"""The wire kit: how to speak one provider's format from the server side.

Each connector ships a :class:`WireKit` next to it (``llm_connectors.testing.<provider>_wire``).
The conformance suite uses kits to script a real :class:`FakeServer`, so the same tests run
against every connector, built-in or third-party.
"""

from __future__ import annotations

import abc
import importlib
import secrets
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from ..base import BaseConnector
from ..types import ToolCall
from .server import Reply, Request

__all__ = ["TEST_KEY", "ScriptedHandler", "WireKit"]

#: The API key kits give connectors: unique per run, so a test suite can check that it never
#: appears in a log line, a warning, an exception or a repr (see tests/conftest.py).
TEST_KEY = f"sk-canary-{secrets.token_hex(12)}"

Finish = Literal["stop", "length", "tool_calls"]


class WireKit(abc.ABC):
    """Server-side helpers for one provider's wire format.

    Every ``*_reply`` method returns a :class:`Reply` a real provider could have sent.
    Token counts passed in are what the provider reports; a kit must make the connector's
    normalised :class:`~llm_connectors.Usage` come out as ``input_tokens`` / ``output_tokens``.
    """

    #: Registry id of the connector this kit speaks for.
    provider_id: ClassVar[str]
    #: ``"module:Class"`` of that connector (or override :meth:`make_connector`).
    connector_path: ClassVar[str] = ""
    #: Appended to the fake server's URL to form the connector's base URL (``"/v1"``...).
    base_path: ClassVar[str] = ""
    #: Whether the connector is given a key (:data:`TEST_KEY`); keyless servers (Ollama) say no.
    needs_key: ClassVar[bool] = True
    #: A model id the kit's replies use.
    model: ClassVar[str] = "fake-model"
    #: Path (as the server sees it) of the chat endpoint.
    chat_path: ClassVar[str]

    def make_connector(self, base_url: str, **kwargs: Any) -> BaseConnector:
        """A connector pointed at ``base_url`` (the fake server), with the test key.

        Kits default to ``retry=False, circuit_breaker=False``: the suites that use them check
        the wire mapping of each reply, which retries would hide. Pass them to override.
        """
        if not self.connector_path:
            raise TypeError(f"{type(self).__name__} must set connector_path or override make_connector")
        module, _, name = self.connector_path.partition(":")
        cls: type[BaseConnector] = getattr(importlib.import_module(module), name)
        if self.needs_key:
            kwargs.setdefault("api_key", TEST_KEY)
        kwargs.setdefault("retry", False)
        kwargs.setdefault("circuit_breaker", False)
        return cls(base_url=base_url + self.base_path, **kwargs)

    def same_endpoint(self, chat_path: str, stream_path: str) -> bool:
        """Whether a streamed call's path fits the non-streamed one's (the same, unless the API
        names streaming in the path, as Gemini's ``:streamGenerateContent`` does)."""
        return chat_path == stream_path

    @abc.abstractmethod
    def chat_reply(self, text: str, *, tool_calls: Sequence[ToolCall] = (), input_tokens: int = 7,
                   output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        """A non-streaming answer."""

    @abc.abstractmethod
    def stream_reply(self, deltas: Sequence[str], *, tool_calls: Sequence[ToolCall] = (),
                     input_tokens: int = 7, output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        """A complete stream whose text is ``"".join(deltas)``, then the tool calls."""

    @abc.abstractmethod
    def error_reply(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        """An HTTP error in the provider's body shape."""

    @abc.abstractmethod
    def stream_error_reply(self, deltas: Sequence[str], *, kind: Literal["overloaded", "api"] = "overloaded"
                           ) -> Reply:
        """HTTP 200, the given deltas, then the provider's in-band error event."""

    def stream_events(self, deltas: Sequence[str], **kwargs: Any) -> list[bytes]:
        """The raw byte events of :meth:`stream_reply`, one per network write."""
        reply = self.stream_reply(deltas, **kwargs)
        return [c for c in reply.chunks or () if isinstance(c, bytes)]

    def embedding_reply(self, vectors: Sequence[Sequence[float]], *, input_tokens: int = 5) -> Reply:
        """An embeddings answer (providers with the ``embeddings`` capability)."""
        raise NotImplementedError(f"{self.provider_id} has no embeddings endpoint")

    def models_reply(self, ids: Sequence[str]) -> Reply:
        """A model-list answer (one page)."""
        raise NotImplementedError(f"{self.provider_id} kit has no model list")


class ScriptedHandler:
    """A server handler that plays scripted replies in order, then a default (or 500)."""

    def __init__(self, replies: Iterable[Reply] = (), default: Reply | None = None) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.default = default

    def __call__(self, request: Request) -> Reply:
        if self.replies:
            return self.replies.popleft()
        if self.default is not None:
            return self.default
        return Reply.json({"error": {"message": "no scripted reply left"}}, 500)

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)
