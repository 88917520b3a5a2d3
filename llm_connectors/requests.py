"""Validated, provider-neutral requests, and the HTTP request a connector builds from them.

Connector authors receive a :class:`ChatRequest` or :class:`EmbeddingRequest` (already checked
against the service definition) and return an :class:`HTTPRequest`; the base class sends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .types import Message

__all__ = ["ChatRequest", "EmbeddingRequest", "HTTPRequest"]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat call after validation.

    Attributes:
        model: The model id (provider prefix stripped, default applied).
        messages: The validated conversation.
        params: Options checked against the service definition (``temperature``, ``tools``...).
            ``stop`` is always a list; ``tool_choice`` is ``auto``/``none``/``required`` or
            ``{"type": "function", "function": {"name": ...}}``.
        extra: Body fields to merge in as given (``extra=`` plus this provider's entry of
            ``provider_options``), deep-merged by the base class after building.
        stream: Whether the caller asked for a stream.
        timeout: The overall time budget of the call, in seconds.
        deadline: Absolute deadline on anyio's clock, set when the call starts (a fallback
            chain passes its own so every member shares one budget).
    """

    model: str
    messages: tuple[Message, ...]
    params: dict[str, Any]
    extra: dict[str, Any] | None = None
    stream: bool = False
    timeout: float = 600.0
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """An embedding call after validation (inputs always a list)."""

    model: str
    inputs: tuple[str, ...]
    params: dict[str, Any]
    extra: dict[str, Any] | None = None
    timeout: float = 600.0
    deadline: float | None = None


@dataclass(slots=True)
class HTTPRequest:
    """What a connector wants sent: method, path (relative to the base URL), body, extras."""

    method: str
    path: str
    json: Any = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: A body that is not JSON (a multipart file upload), sent as given when ``json`` is ``None``;
    #: ``headers`` carry its content type.
    content: bytes | None = None
