"""``FallbackConnector``: several providers behind one connector, tried in order.

A member is skipped when its error says so (``err.fallback``: failures retries could not fix,
an open circuit, rate limits, auth failures, context-window overflow, a missing capability).
A request that is malformed for *every* member is raised at once. Streams fall back only until
their first chunk reaches the caller; a failure after that raises ``StreamInterruptedError``
with the delivered text, so no text is ever delivered twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

import anyio

from ._batch import BatchItem, BatchResult, ProgressCallback, run_chat_batch
from .base import BaseConnector
from .batches import BatchJob
from .definition import Capability, ServiceDefinition
from .errors import (
    AllProvidersFailedError,
    ConfigurationError,
    InvalidRequestError,
    LLMConnectorError,
    NotFoundError,
    TimeoutError,
    UnsupportedCapabilityError,
)
from .ids import is_provider_id
from .requests import ChatRequest, EmbeddingRequest
from .stream import ChatStream
from .types import ChatResponse, EmbeddingResponse, MessageInput, ModelInfo, TokenCount

__all__ = ["FallbackConnector"]

R = TypeVar("R")
P = TypeVar("P", ChatRequest, EmbeddingRequest)


class FallbackConnector:
    """A chain of connectors with the same surface as :class:`BaseConnector`.

    Args:
        members: Connectors to try, in order. The chain owns them: ``aclose()`` closes them.

    The answer says who served it (``resp.provider``); ``stats()`` has every member's counters,
    including how often the chain moved past it (``fallbacks``).
    """

    def __init__(self, members: Sequence[BaseConnector]) -> None:
        if not members:
            raise ConfigurationError("a fallback chain needs at least one connector")
        for member in members:
            if not isinstance(member, BaseConnector):
                raise ConfigurationError(f"fallback members must be connectors, got {type(member).__name__}")
        self.members: list[BaseConnector] = list(members)
        self.provider = "fallback"
        self.definition = _chain_definition(self.members)
        self.timeouts = self.members[0].timeouts

    # -- the BaseConnector surface -----------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[str]:
        """Everything at least one member can do."""
        return self.definition.capabilities

    def is_compatible_model(self, model: str) -> bool:
        return any(m.is_compatible_model(model) for m in self.members)

    async def generate_chat(self, model: str | None = None,
                            messages: Iterable[MessageInput] | str = (), **options: Any) -> ChatResponse:
        """Ask each member in turn until one answers; see the module docstring for the rules."""
        messages = _materialise(messages)
        prepared = self._prepare(model, lambda m, mdl: m.prepare_chat(mdl, messages, options, stream=False),
                                 options)
        return await self._run(prepared, lambda member, request: member.execute_chat(request))

    def generate_chat_stream(self, model: str | None = None,
                             messages: Iterable[MessageInput] | str = (), **options: Any) -> ChatStream:
        """Stream from the first member that opens; falls back only before the first chunk."""
        messages = _materialise(messages)
        prepared = self._prepare(model, lambda m, mdl: m.prepare_chat(mdl, messages, options, stream=True),
                                 options)
        return ChatStream(lambda: self._run(prepared, lambda member, request: member.open_stream(request)))

    async def generate_embedding(self, model: str | None = None, input: str | Sequence[str] = (),
                                 **options: Any) -> EmbeddingResponse:
        """Embed with the first member that has embeddings and succeeds."""
        prepared = self._prepare(model, lambda m, mdl: m.prepare_embedding(mdl, input, options), options)
        return await self._run(prepared, lambda member, request: member.execute_embedding(request))

    async def generate_chat_batch(self, requests: Sequence[BatchItem], *, concurrency: int = 4,
                                  on_progress: ProgressCallback | None = None) -> list[BatchResult]:
        """Run many chats through the chain, in order, with per-item errors (see BaseConnector)."""
        return await run_chat_batch(self, requests, concurrency=concurrency, on_progress=on_progress)

    async def submit_batch(self, items: Iterable[Mapping[str, Any]]) -> BatchJob:
        """Submit to the first member with a provider batch API (a job runs at one provider)."""
        return await self._batch_member().submit_batch(items)

    async def get_batch(self, batch_id: str) -> BatchJob:
        """A job of the first member with a provider batch API."""
        return await self._batch_member().get_batch(batch_id)

    def list_batches(self) -> AsyncIterator[BatchJob]:
        """The jobs of the first member with a provider batch API."""
        return self._batch_member().list_batches()

    def _batch_member(self) -> BaseConnector:
        for member in self.members:
            if member.batch_translator() is not None:
                return member
        raise UnsupportedCapabilityError(
            "no member of this chain has a provider batch API (Claude, OpenAI and Mistral do): "
            f"{', '.join(m.provider for m in self.members)}", provider=self.provider)

    async def list_models(self) -> list[ModelInfo]:
        """Every member's models, with ids as ``"provider:model"`` so they route on this chain."""
        models: list[ModelInfo] = []
        for member in self.members:
            if Capability.LIST_MODELS not in member.capabilities:
                continue
            for info in await member.list_models():
                models.append(replace(info, id=f"{member.provider}:{info.id}"))
        return models

    async def count_tokens(self, model: str | None = None, messages: Iterable[MessageInput] | str = (),
                           **options: Any) -> TokenCount:
        """The input-token count of the member the chain would try first with ``model``."""
        member, member_model = self._targets(model)[0]
        return await member.count_tokens(member_model, messages, **options)

    def model_info(self, model: str | None = None) -> ModelInfo:
        """The catalog's facts for ``model`` from the member the chain would try first with it."""
        member, member_model = self._targets(model)[0]
        return member.model_info(member_model)

    async def health_check(self, timeout: float | None = None) -> bool:
        """True when at least one member is healthy."""
        for member in self.members:
            if await member.health_check(timeout):
                return True
        return False

    def stats(self) -> dict[str, dict[str, Any]]:
        """Each member's counters, keyed by provider id."""
        out: dict[str, dict[str, Any]] = {}
        for member in self.members:
            out.update(member.stats())
        return out

    async def aclose(self) -> None:
        """Close every member."""
        for member in self.members:
            with anyio.CancelScope(shield=True):
                await member.aclose()

    async def __aenter__(self) -> FallbackConnector:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<FallbackConnector {' -> '.join(m.provider for m in self.members)}>"

    # -- routing and validation (before any I/O) -----------------------------------------------

    def _targets(self, model: str | None) -> list[tuple[BaseConnector, str | None]]:
        """Which members to try, each with the model it should use."""
        if model is None:
            return [(m, None) for m in self.members]
        if not isinstance(model, str) or not model.strip():
            raise InvalidRequestError(f"model must be a non-empty string, got {model!r}")
        prefix, sep, rest = model.partition(":")
        if sep:
            routed = [m for m in self.members if prefix in (m.provider, m.definition.id, *m.definition.aliases)]
            if routed:  # "provider:model" goes to that provider only
                return [(m, rest or None) for m in routed]
            if is_provider_id(prefix):
                raise InvalidRequestError(
                    f"model {model!r} routes to provider {prefix!r}, which is not in this chain "
                    f"({', '.join(m.provider for m in self.members)})")
        # A bare model goes to members that claim it by pattern; members that take any model use it
        # only when no member claims it; everyone else keeps its own default.
        claimed = any(m.definition.model_patterns and m.is_compatible_model(model) for m in self.members)
        targets: list[tuple[BaseConnector, str | None]] = []
        for member in self.members:
            patterns = member.definition.model_patterns
            uses_it = member.is_compatible_model(model) if patterns else not claimed
            targets.append((member, model if uses_it else None))
        return targets

    def _prepare(self, model: str | None, prepare: Callable[[BaseConnector, str | None], P],
                 options: Mapping[str, Any]) -> list[tuple[BaseConnector, P | LLMConnectorError]]:
        """Validate the call for every target member; raise if it is invalid for all of them."""
        prepared: list[tuple[BaseConnector, P | LLMConnectorError]] = []
        for member, member_model in self._targets(model):
            try:
                prepared.append((member, prepare(member, member_model)))
            except (InvalidRequestError, UnsupportedCapabilityError, ConfigurationError, NotFoundError) as exc:
                prepared.append((member, exc))  # NotFoundError here: a retired model (the catalog says so)
        usable = [p for _, p in prepared if not isinstance(p, LLMConnectorError)]
        if not usable:
            errors = [p for _, p in prepared if isinstance(p, LLMConnectorError)]
            invalid = [e for e in errors if not e.fallback]
            if invalid:
                raise invalid[0]  # malformed for every member: no point sending it anywhere
            raise AllProvidersFailedError(errors)
        return prepared

    # -- running -----------------------------------------------------------------------------

    async def _run(self, prepared: list[tuple[BaseConnector, P | LLMConnectorError]],
                   call: Callable[[BaseConnector, P], Awaitable[R]]) -> R:
        budget = self._budget(prepared)
        deadline = anyio.current_time() + budget
        errors: list[LLMConnectorError] = []
        for member, request in prepared:
            if isinstance(request, LLMConnectorError):
                errors.append(request)  # this member could not take the call (validated, not sent)
                continue
            if anyio.current_time() >= deadline:
                errors.append(TimeoutError("the call's deadline passed before this provider was tried",
                                           provider=member.provider))
                break
            try:
                return await call(member, replace(request, deadline=deadline))
            except LLMConnectorError as exc:
                if not exc.fallback:
                    raise
                errors.append(exc)
                member.count_fallback()
        if len(errors) == 1:
            raise errors[0]
        raise AllProvidersFailedError(errors)

    @staticmethod
    def _budget(prepared: Sequence[tuple[BaseConnector, object]]) -> float:
        for _, request in prepared:
            timeout = getattr(request, "timeout", None)
            if isinstance(timeout, float):
                return timeout  # one budget for the whole chain: the first usable member's timeout
        return 600.0

def _materialise(messages: Iterable[MessageInput] | str) -> Sequence[MessageInput] | str:
    """Members each read the messages; a one-shot iterator must be read only once."""
    if isinstance(messages, (str, list, tuple)):
        return messages
    return list(messages)


def _chain_definition(members: Sequence[BaseConnector]) -> ServiceDefinition:
    first = members[0].definition
    capabilities = frozenset().union(*(m.capabilities for m in members))
    return first.with_changes(
        id="fallback",
        name="Fallback chain: " + " -> ".join(m.provider for m in members),
        capabilities=capabilities,
        aliases=(),
        default_model=None,
        default_embedding_model=None,
        model_patterns=(),
    )

