"""``BaseConnector``: the public API every provider shares, and all of its I/O.

A provider subclass is a pure translator. It declares a :class:`ServiceDefinition` and
implements ``build_chat_request`` / ``parse_chat_response`` / ``create_stream_decoder``
(plus the embedding and model-list pairs if it has them). Everything else lives here:
validation before any I/O, the pooled HTTP client, auth headers, timeouts and deadlines,
error classification, SSE/NDJSON framing, stream accumulation and lifecycle.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import anyio

from . import catalog
from ._batch import BatchItem, BatchResult, ProgressCallback, run_chat_batch
from ._env import settings_from_env
from ._secrets import Secret
from .catalog import checks as catalog_checks
from .definition import RESERVED_OPTIONS, Capability, ServiceDefinition, unknown_option_error
from .errors import (
    ConfigurationError,
    InvalidRequestError,
    LLMConnectorError,
    UnsupportedCapabilityError,
)
from .http.config import HTTPConfig
from .http.credentials import Credentials, KeySource
from .http.log_scrub import watch_logs_for
from .http.sender import HTTPSender
from .http.settings import MAX_TIMEOUT, Timeouts, warn_unverified
from .ids import check_provider_ids, is_provider_id
from .json_values import INT64_MAX, check_json_value, check_text
from .options import CALL_OPTIONS, HTTP_OPTIONS, REQUEST_OPTIONS, ConnectorOptions
from .pipeline import CallPipeline
from .requests import ChatRequest, EmbeddingRequest, HTTPRequest
from .stream import ChatStream, OpenStream, StreamDecoder
from .tokens import estimate_input_tokens
from .types import ChatResponse, EmbeddingResponse, Message, MessageInput, ModelInfo, OptionRule, TokenCount
from .wire import jsonio
from .wire.classify import ErrorInfo, classify, parse_error_body
from .wire.messages import has_parts, normalize_messages

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .batches import BatchClient, BatchJob, BatchTranslator

__all__ = ["BaseConnector"]

logger = logging.getLogger("llm_connectors")
T = TypeVar("T")
C = TypeVar("C", bound="BaseConnector")
Req = TypeVar("Req", ChatRequest, EmbeddingRequest)
MAX_MODEL_PAGES = 100
_RULE_CACHE_SIZE = 256
_OPTION_CAPABILITIES = {"tools": Capability.TOOLS, "tool_choice": Capability.TOOLS}
_FORMAT_CAPABILITIES = {"json_object": Capability.JSON_MODE, "json_schema": Capability.JSON_SCHEMA}


class BaseConnector(abc.ABC):
    """One provider behind the common interface.

    Args:
        api_key: The provider key (or token). Held so that no repr or error shows it.
        base_url: API base URL; defaults to the definition's.
        default_model: Chat model for calls that pass ``model=None``.
        default_embedding_model: Embedding model for calls that pass ``model=None``.
        timeout: Seconds for the overall deadline of each call, or a :class:`Timeouts`.
        headers: Extra headers sent with every request (validated now, not at send time).
        http_client: Your own ``httpx.AsyncClient``; the connector will not close it. It keeps its
            own TLS settings: combining it with a ``verify`` other than ``True`` is refused.
        transport: ``"httpx"``, ``"aiohttp"`` (the ``fast`` extra; asyncio only) or ``"auto"``
            (the default: aiohttp under asyncio when installed, else httpx); or an
            ``httpx.AsyncBaseTransport`` for the connector's own client (tests, proxies).
        pool: Connection pool limits for the connector's own client.
        provider_id: The id this instance answers to (defaults to ``definition.id``).
        retry: A :class:`~llm_connectors.RetryPolicy` (or dict); ``None``: the default policy
            (2 retries); ``False``: no retries.
        circuit_breaker: A :class:`~llm_connectors.CircuitBreakerConfig` (or dict); ``None``:
            defaults (5 failures, 30 s); ``False``: off.
        rate_limit: A :class:`~llm_connectors.RateLimit` (or dict); ``None``: no client-side
            limits (a 429's Retry-After still pauses the provider for everyone).
        cache: A :class:`~llm_connectors.CacheConfig` (or dict, or ``True``) to cache complete
            non-streaming answers, embeddings and model lists; off by default.
        shared_state: A Redis URL (``"redis://host:6379/0"``), a ``SharedState`` or a dict of
            its fields: rate limits, 429 cooldowns, circuit state and the cache are shared by every
            process using that Redis (the ``redis`` extra; see docs/redis.md). Validated now.
        hooks: :class:`~llm_connectors.Hooks` called around every call.
        log_payloads: Log request and response bodies (scrubbed, truncated) at DEBUG on the
            ``llm_connectors.payloads`` logger. Off by default: prompts are never logged otherwise.
        follow_redirects: Follow redirects (credentials are dropped on any cross-origin hop and
            https is never downgraded). Off by default: a redirect is reported as an error.
        allow_insecure_http: Allow plain ``http`` to a non-loopback host.
        allow_private_network: Allow link-local and cloud-metadata addresses as ``base_url``.
        verify: How the server's TLS certificate is checked: ``True`` (the default: httpx's trust
            store, honouring ``SSL_CERT_FILE``/``SSL_CERT_DIR``), the path of a CA bundle (a PEM
            file, or a directory of hashed certificates; only those CAs are trusted) or an
            ``ssl.SSLContext``. ``False`` (or a context that skips the checks) is refused unless
            ``allow_unverified_tls=True``, and then warns once per process
            (:class:`~llm_connectors.InsecureTLSWarning`). Validated now. Ignored with a
            ``transport`` object, which brings its own TLS settings.
        allow_unverified_tls: Confirm ``verify=False``; has no effect otherwise.
        max_body_bytes: The largest answer accepted, in bytes: a decoded non-streaming body, and
            one stream line or event (Ollama and Mistral stream a tool call whole in one line).
            Default 32 MiB; 64 KiB to 1 GiB. Larger is a ``ProtocolError``.
    """

    #: The declarative description of the provider; every subclass sets it.
    definition: ClassVar[ServiceDefinition]
    #: How the provider frames streams.
    stream_format: ClassVar[Literal["sse", "ndjson"]] = "sse"
    #: Response headers that carry the provider's request id, first match wins.
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id", "request-id")
    #: Provider error codes/types that name a more precise error class than the status.
    error_codes: ClassVar[Mapping[str, type[LLMConnectorError]]] = {}
    #: Most inputs one embedding request may carry; larger calls are split (None = no limit).
    embedding_batch_size: ClassVar[int | None] = None
    #: How many of those split embedding requests run at once.
    embedding_concurrency: ClassVar[int] = 4
    #: The roles the provider takes as such; a ``developer`` turn is sent as ``system`` where it is missing.
    message_roles: ClassVar[frozenset[str]] = frozenset({"system", "user", "assistant", "tool"})

    def __init__(self, *, api_key: KeySource = None, base_url: str | None = None, default_model: str | None = None,
                 default_embedding_model: str | None = None, timeout: float | Timeouts | None = None,
                 provider_id: str | None = None, **options: Unpack[ConnectorOptions]) -> None:
        definition = self.definition
        self.provider: str = provider_id or definition.id
        for name, given in (("default_model", default_model), ("default_embedding_model", default_embedding_model)):
            if given is not None and (not isinstance(given, str) or not given.strip()):
                raise ConfigurationError(f"{name} must be a model id (a non-empty string), got {str(given)[:40]!r}",
                                         provider=provider_id or definition.id)
        self.default_model = default_model or definition.default_model
        self.default_embedding_model = default_embedding_model or definition.default_embedding_model
        self._credentials = Credentials(api_key, provider=self.provider)
        sends_credentials = self._credentials.configured or self.has_other_credentials()
        http_options: dict[str, Any] = dict(options)
        call_options = {name: http_options.pop(name) for name in CALL_OPTIONS & http_options.keys()}
        request_options = {name: http_options.pop(name) for name in REQUEST_OPTIONS & http_options.keys()}
        self.drop_params: bool = _flag(request_options.get("drop_params", False), "drop_params")
        self._rule_cache: dict[str, tuple[ModelInfo | None, tuple[OptionRule, ...], frozenset[str]]] = {}
        _refuse_unknown(type(self).__name__, http_options.keys() - HTTP_OPTIONS)
        http = HTTPConfig.build(provider=self.provider, default_base_url=definition.base_url,
                                sends_credentials=sends_credentials, base_url=base_url, timeout=timeout,
                                **http_options)
        if not sends_credentials and definition.auth.required and definition.auth.kind != "none":
            env = definition.auth.env_var
            raise ConfigurationError(
                f"{definition.name} needs an API key: pass api_key=..."
                + (f" or set the {env} environment variable" if env else ""),
                provider=self.provider,
            )
        self.base_url: str = http.base_url
        self.timeouts: Timeouts = http.timeouts
        self._pipeline = CallPipeline.build(self.provider, self.base_url, credential=self._credentials.fingerprint,
                                            **call_options)
        self._sender = HTTPSender(self, http, self._credentials, observe_headers=self._pipeline.header_observer())
        watch_logs_for(self)  # httpcore logs response heads verbatim: a key echoed in one is cut out
        if not http.tls.verifies:  # last, so a connector that failed validation never warns
            warn_unverified(self.provider)

    @classmethod
    def from_env(cls: type[C], environ: Mapping[str, str] | None = None, **kwargs: Any) -> C:
        """Construct with ``api_key``/``base_url`` taken from the environment when not given."""
        return cls(**settings_from_env(cls.definition, kwargs, environ))

    # -- the translator interface (what a provider implements) ---------------------------------

    @abc.abstractmethod
    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        """Translate a validated chat request into the provider's HTTP request."""

    @abc.abstractmethod
    def parse_chat_response(self, data: Any, request: ChatRequest) -> ChatResponse:
        """Translate the provider's JSON answer into a :class:`ChatResponse`."""

    @abc.abstractmethod
    def create_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        """A fresh decoder for one stream of this provider's events."""

    def build_embedding_request(self, request: EmbeddingRequest) -> HTTPRequest:
        """Translate an embedding request (providers with the ``embeddings`` capability)."""
        raise self._unsupported(Capability.EMBEDDINGS)

    def parse_embedding_response(self, data: Any, request: EmbeddingRequest) -> EmbeddingResponse:
        raise self._unsupported(Capability.EMBEDDINGS)

    def build_list_models_request(self, cursor: str | None) -> HTTPRequest:
        """The request for one page of models; ``cursor`` is what the last page returned."""
        raise self._unsupported(Capability.LIST_MODELS)

    def parse_list_models(self, data: Any) -> tuple[list[ModelInfo], str | None]:
        """One page of models and the cursor of the next page (``None`` when done)."""
        raise self._unsupported(Capability.LIST_MODELS)

    def build_count_tokens_request(self, request: ChatRequest) -> HTTPRequest | None:
        """The provider's token-counting request for a validated chat, or ``None`` where it has none
        (``count_tokens`` then gives the local estimate)."""
        return None

    def parse_count_tokens(self, data: Any) -> int:
        """The input-token count from the answer to :meth:`build_count_tokens_request`."""
        raise self._unsupported("count_tokens")

    def build_health_request(self) -> HTTPRequest:
        """A cheap authenticated request; by default the first page of models."""
        return self.build_list_models_request(None)

    def has_other_credentials(self) -> bool:
        """Whether credentials other than ``api_key`` were given (e.g. Claude's auth token).

        Called from ``__init__`` when ``api_key`` is missing; set what it reads before calling
        ``super().__init__``.
        """
        return False

    def credential_headers(self, key: Secret | None) -> dict[str, str]:
        """Headers carrying ``key`` (chosen per request: static, rotated or from a callable)."""
        auth = self.definition.auth
        if key is None or auth.kind == "none":
            return {}
        if auth.kind == "bearer":
            return {"authorization": "Bearer " + key.reveal()}
        return {auth.header: key.reveal()}

    @property
    def has_api_key(self) -> bool:
        """Whether an API key (one, a list, or a callable) is configured; the key itself is never exposed."""
        return self._credentials.configured

    def auth_headers(self) -> dict[str, str]:
        """The credential headers for the first configured key (inspection and tests)."""
        return self.credential_headers(self._credentials.primary)

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        """Read the message and codes out of an error body (override for odd shapes)."""
        return parse_error_body(status, body)

    def error_from_payload(self, payload: Any, *, status: int | None = None) -> LLMConnectorError:
        """The typed error for an error object that arrived *inside* a stream."""
        body = jsonio.dumps(payload)
        info = self.parse_error(status or 500, body)
        err = classify(status or 500, info, {}, provider=self.provider, request_id=None,
                       codes=self.error_codes)
        if status is None:
            err.status_code = None
        return self._sender.scrubbed(err)

    # -- public API --------------------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[str]:
        """What this provider can do (see :class:`~llm_connectors.definition.Capability`)."""
        return self.definition.capabilities

    def is_compatible_model(self, model: str) -> bool:
        """Whether ``model`` looks like one of this provider's models (by id prefix)."""
        model = self._strip_prefix(model)
        patterns = self.definition.model_patterns
        return not patterns or model.startswith(patterns)

    async def generate_chat(
        self, model: str | None = None, messages: Iterable[MessageInput] | str = (), **options: Any
    ) -> ChatResponse:
        """Send a conversation and wait for the complete answer.

        Args:
            model: Model id, ``"provider:model"``, or ``None`` for the default model.
            messages: Dicts in the OpenAI shape or :class:`~llm_connectors.Message` objects.
            **options: ``temperature``, ``top_p``, ``max_tokens``, ``stop``, ``seed``, ``tools``,
                ``tool_choice``, ``response_format``, ``timeout``, ``extra``,
                ``provider_options`` and the provider's own declared options.

        Raises:
            InvalidRequestError: bad messages or options, before anything is sent.
            UnsupportedCapabilityError: e.g. tools on a provider without tools.
            LLMConnectorError: any provider or network failure, typed.
        """
        request = self.prepare_chat(model, messages, options, stream=False)
        return await self.execute_chat(request)

    def generate_chat_stream(
        self, model: str | None = None, messages: Iterable[MessageInput] | str = (), **options: Any
    ) -> ChatStream:
        """Stream the answer. Options are validated now; the request is sent on first iteration.

        Use ``async with conn.generate_chat_stream(...) as stream:`` to guarantee the HTTP
        response is closed however the loop ends.
        """
        request = self.prepare_chat(model, messages, options, stream=True)
        return ChatStream(lambda: self.open_stream(request))

    async def generate_embedding(
        self, model: str | None = None, input: str | Sequence[str] = (), **options: Any
    ) -> EmbeddingResponse:
        """Embed one text or many; ``embeddings`` keeps input order."""
        request = self.prepare_embedding(model, input, options)
        return await self.execute_embedding(request)

    async def generate_chat_batch(self, requests: Sequence[BatchItem], *, concurrency: int = 4,
                                  on_progress: ProgressCallback | None = None) -> list[BatchResult]:
        """Run many chats, ``concurrency`` at a time, within the rate limits.

        Each item is a prompt string, a list of messages, or a dict with ``messages`` (and
        optionally ``model`` and any options). Results keep input order; a failed item holds its
        typed error instead of a response. ``on_progress(done, total)`` is called after each item.
        """
        return await run_chat_batch(self, requests, concurrency=concurrency, on_progress=on_progress)

    # -- provider batch jobs (batches.py; a connector with a batch API returns its translator) ---

    def batch_translator(self) -> BatchTranslator | None:
        """The provider's batch API as a translator, or ``None`` where it has none."""
        return None

    async def submit_batch(self, items: Iterable[Mapping[str, Any]]) -> BatchJob:
        """Submit many chats as one provider batch job (about half price, results within 24 h).

        Each item is a dict with ``custom_id``, ``messages``, optionally ``model``, and any option of
        :meth:`generate_chat`. Every item is validated and its body built before anything is sent.
        Raises :class:`UnsupportedCapabilityError` (before I/O) where the provider has no batch API.
        """
        from .batches import prepare_items  # batch jobs are rare: their module loads on first use

        client = self._batch_client()
        prepared = prepare_items(items, client.translator, self.provider,
                                 lambda model, messages, options: self.prepare_chat(model, messages, options,
                                                                                     stream=False),
                                 self._chat_wire)
        return await client.submit(prepared)

    async def get_batch(self, batch_id: str) -> BatchJob:
        """The job with this id, e.g. submitted by another process."""
        return await self._batch_client().get(batch_id)

    def list_batches(self) -> AsyncIterator[BatchJob]:
        """The provider's batch jobs, newest first, page by page."""
        return self._batch_client().iterate()

    def _batch_client(self) -> BatchClient:
        from .batches import BatchClient

        translator = self.batch_translator()
        if translator is None:
            raise self._unsupported("batches", "provider batch jobs")
        return BatchClient(self.provider, translator, self._sender, self.timeouts.total,
                           catalog_id=self.definition.id)

    async def list_models(self) -> list[ModelInfo]:
        """Every model the provider lists (all pages); cached briefly when the cache is on."""
        if Capability.LIST_MODELS not in self.capabilities:
            raise self._unsupported(Capability.LIST_MODELS)
        listed = await self._pipeline.models(self._fetch_models)
        return [catalog.merged(self.definition.id, info) for info in listed]

    async def _fetch_models(self) -> list[ModelInfo]:
        deadline = anyio.current_time() + self.timeouts.total
        models: list[ModelInfo] = []
        cursor: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            data = await self._sender.read_json(self.build_list_models_request(cursor), deadline, "model list")
            page, cursor = self.parse_list_models(data)
            models.extend(page)
            if not cursor:
                break
        return models

    async def count_tokens(self, model: str | None = None, messages: Iterable[MessageInput] | str = (),
                           **options: Any) -> TokenCount:
        """How many input tokens ``generate_chat(model, messages, **options)`` would count.

        Validated like the call itself. Providers with a counting endpoint (Claude) answer exactly;
        elsewhere it is a local estimate (``exact=False``) from the model's characters per token.
        ``extra`` and ``provider_options`` are not sent: they hold fields of the chat request, which
        the counting endpoint may refuse.
        """
        request = self.prepare_chat(model, messages, options, stream=False)
        wire = self.build_count_tokens_request(request)
        if wire is None:
            info = catalog.entry(self.definition.id, request.model)
            estimate = estimate_input_tokens(request.messages, request.params,
                                             info.chars_per_token if info is not None else None)
            return TokenCount(input_tokens=estimate, exact=False, model=request.model)
        deadline = anyio.current_time() + request.timeout
        data = await self._sender.read_json(wire, deadline, "token count")
        return TokenCount(input_tokens=self.parse_count_tokens(data), exact=True, model=request.model)

    async def health_check(self, timeout: float | None = None) -> bool:
        """True when the provider answers an authenticated request within ``timeout`` seconds.

        Never raises for provider or network failures; the default timeout is 10 s.
        """
        deadline = anyio.current_time() + (timeout if timeout is not None else min(10.0, self.timeouts.total))
        try:
            await self._sender.read_json(self.build_health_request(), deadline, "health check")
        except LLMConnectorError as exc:
            logger.debug("health check of %s failed: %s", self.provider, type(exc).__name__)
            return False
        return True

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per provider: requests, successes, errors by kind, retries, fallbacks, latency and
        time-to-first-token percentiles, tokens in/out, estimated cost, breaker state, limiter waits,
        cache hits and (for key lists) keys set aside."""
        snapshot = self._pipeline.snapshot()
        keys = self._credentials.snapshot()
        if keys:
            snapshot["keys"] = keys
        return {self.provider: snapshot}

    async def aclose(self) -> None:
        """Release the connector's HTTP client (not one you passed in). Safe to call twice."""
        await self._sender.aclose()

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        fields = " ".join(f"{name}={getattr(self, name, None)!r}" for name in ("provider", "base_url", "default_model"))
        return f"<{type(self).__name__} {fields}>"

    # -- preparing requests (validation, before any I/O) ---------------------------------------

    def prepare_chat(self, model: str | None, messages: Iterable[MessageInput] | str,
                     options: Mapping[str, Any], *, stream: bool) -> ChatRequest:
        """Validate a chat call into a :class:`ChatRequest`; raises before anything is sent."""
        if stream and Capability.STREAMING not in self.capabilities:
            raise self._unsupported(Capability.STREAMING)
        resolved = self._resolve_model(model, self.default_model, "chat")
        info = self._known_model(resolved)
        msgs = self._with_own_roles(normalize_messages(messages, self.provider))
        params, extra, timeout, drop = self._split_options(options)
        caps = self.capabilities
        for name in params:
            needed = _OPTION_CAPABILITIES.get(name)
            if needed is not None and needed not in caps:
                raise self._unsupported(needed, f"option {name!r}")
        checked = self.definition.validate_options(params)
        response_format = checked.get("response_format")
        if response_format:
            needed = _FORMAT_CAPABILITIES.get(response_format["type"])
            if needed is not None and needed not in caps:
                raise self._unsupported(needed, f"response_format {response_format['type']}")
        if Capability.VISION not in caps and has_parts(msgs, "image_url"):
            raise self._unsupported(Capability.VISION, "image content")
        documents = has_parts(msgs, "file")
        if Capability.DOCUMENTS not in caps and documents:
            raise self._unsupported(Capability.DOCUMENTS, "document (file) content")
        choice = checked.get("tool_choice")
        if isinstance(choice, dict):
            names = {t["function"]["name"] for t in checked.get("tools", ())}
            if choice["function"]["name"] not in names:
                raise InvalidRequestError(
                    f"tool_choice names {choice['function']['name']!r}, which is not among tools "
                    f"{sorted(names)}", provider=self.provider)
        if info is not None:
            catalog_checks.check_inputs(self.provider, resolved, info, msgs, has_documents=documents)
        rules, ruled = self._rules_of(resolved, info)
        if not ruled.isdisjoint(checked):
            checked = catalog_checks.apply_rules(self.provider, resolved, rules, checked,
                                                 drop=self.drop_params if drop is None else drop)
        return ChatRequest(resolved, msgs, checked, extra, stream, timeout)

    # -- the model catalog ------------------------------------------------------------------------

    def model_info(self, model: str | None = None) -> ModelInfo:
        """What the model catalog knows of ``model`` (default: the default chat model): context window,
        output limit, input modalities, reasoning efforts, the API it needs, prices, lifecycle and the
        options it treats differently. A model the catalog does not know gives a bare ``ModelInfo``."""
        resolved = self._resolve_model(model, self.default_model, "chat")
        return catalog.entry(self.definition.id, resolved) or ModelInfo(id=resolved, name=resolved)

    def model_rules(self, model: str, info: ModelInfo | None) -> tuple[OptionRule, ...]:
        """The option rules checked before I/O for ``model``: the catalog entry's, and its reasoning
        efforts where the entry lists them. A connector adds its own here (rules that follow an API
        version, say)."""
        if info is None:
            return ()
        if not info.reasoning_efforts:
            return info.rules
        efforts = OptionRule(option="reasoning_effort", allowed=info.reasoning_efforts,
                             why=f"the reasoning efforts {info.id} takes, per the model catalog")
        return (*info.rules, efforts)

    def _rules_of(self, model: str, info: ModelInfo | None) -> tuple[tuple[OptionRule, ...], frozenset[str]]:
        """``model_rules`` and the options they name, kept per model while its catalog entry is the same
        object: built once, not on every call (``register_model`` makes a new entry)."""
        cached = self._rule_cache.get(model)
        if cached is not None and cached[0] is info:
            return cached[1], cached[2]
        rules = self.model_rules(model, info)
        ruled = frozenset(rule.option for rule in rules)
        if len(self._rule_cache) >= _RULE_CACHE_SIZE:  # any string may name a model: stay bounded
            self._rule_cache.clear()
        self._rule_cache[model] = (info, rules, ruled)
        return rules, ruled

    def _known_model(self, model: str) -> ModelInfo | None:
        """The catalog entry of a model about to be called, after its lifecycle check."""
        info = catalog.entry(self.definition.id, model)
        if info is not None:
            catalog_checks.check_lifecycle(self.provider, model, info, catalog.today())
        return info

    def _with_own_roles(self, messages: tuple[Message, ...]) -> tuple[Message, ...]:
        if "developer" in self.message_roles or not any(m.role == "developer" for m in messages):
            return messages
        return tuple(replace(m, role="system") if m.role == "developer" else m for m in messages)

    def prepare_embedding(self, model: str | None, input: str | Sequence[str],
                          options: Mapping[str, Any]) -> EmbeddingRequest:
        """Validate an embedding call; raises before anything is sent."""
        if Capability.EMBEDDINGS not in self.capabilities:
            raise self._unsupported(Capability.EMBEDDINGS)
        resolved = self._resolve_model(model, self.default_embedding_model, "embedding")
        self._known_model(resolved)
        given: object = input  # typed as text, but callers pass anything
        if isinstance(given, str):
            inputs: tuple[str, ...] = (given,)
        elif isinstance(given, (list, tuple)):
            inputs = tuple(given)
        else:
            raise InvalidRequestError(f"input must be a string or a list of strings, got {type(given).__name__}",
                                      provider=self.provider)
        if not inputs:
            raise InvalidRequestError("input is empty; pass a string or a list of strings",
                                      provider=self.provider)
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise InvalidRequestError(f"input[{i}] must be a string, got {type(text).__name__}",
                                          provider=self.provider)
            if not text:
                raise InvalidRequestError(f"input[{i}] is an empty string; providers reject those",
                                          provider=self.provider)
            check_text(text, f"input[{i}]", self.provider)
        params, extra, timeout, _ = self._split_options(options)
        checked = self.validate_embedding_options(params)
        return EmbeddingRequest(resolved, inputs, checked, extra, timeout)

    def validate_embedding_options(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Embedding options; by default only ``dimensions`` (a positive int) is accepted."""
        out: dict[str, Any] = {}
        for name, value in params.items():
            if name != "dimensions":
                raise unknown_option_error(name, ["dimensions"], self.provider)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= INT64_MAX:
                raise InvalidRequestError(f"option 'dimensions' must be an integer >= 1 (and fit in 64 bits), "
                                          f"got {str(value)[:40]}", provider=self.provider)
            out[name] = value
        return out

    def _split_options(
        self, options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None, float, bool | None]:
        """The provider's options, the body fields to merge, the timeout and the call's drop_params."""
        params: dict[str, Any] = {}
        extra: dict[str, Any] | None = None
        timeout = self.timeouts.total
        drop: bool | None = None
        for name, value in options.items():
            if name not in RESERVED_OPTIONS:
                params[name] = value
            elif value is None:
                continue
            elif name == "drop_params":
                drop = _flag(value, "option 'drop_params'", self.provider)
            elif name == "timeout":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < MAX_TIMEOUT:
                    raise InvalidRequestError(f"option 'timeout' must be a positive, finite number of seconds "
                                              f"(under {MAX_TIMEOUT:g}), got {value!r}", provider=self.provider)
                timeout = float(value)
            elif name == "extra":
                if not isinstance(value, Mapping):
                    raise InvalidRequestError("option 'extra' must be a dict of body fields",
                                              provider=self.provider)
                check_json_value(value, "option 'extra'", self.provider)
                extra = _deep_merge(extra or {}, value)
            else:
                own = self._own_provider_options(value)
                if own:
                    extra = _deep_merge(extra or {}, own)
        return params, extra, timeout, drop

    def _own_provider_options(self, value: Any) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            raise InvalidRequestError(
                "provider_options must be a dict keyed by provider id, like {'ollama': {'keep_alive': '5m'}}",
                provider=self.provider)
        check_provider_ids(value.keys(), what="provider_options")
        mine = None
        for key in (self.provider, self.definition.id, *self.definition.aliases):
            entry = value.get(key)
            if entry is not None:
                if not isinstance(entry, Mapping):
                    raise InvalidRequestError(f"provider_options[{key!r}] must be a dict of body fields",
                                              provider=self.provider)
                check_json_value(entry, f"provider_options[{key!r}]", self.provider)
                mine = entry if mine is None else _deep_merge(dict(mine), entry)
        return mine

    def _strip_prefix(self, model: str) -> str:
        prefix, sep, rest = model.partition(":")
        if sep and (prefix in (self.provider, self.definition.id) or prefix in self.definition.aliases):
            return rest
        return model

    def _resolve_model(self, model: str | None, default: str | None, kind: str) -> str:
        if model is not None:
            if not isinstance(model, str) or not model.strip():
                raise InvalidRequestError(f"model must be a non-empty string, got {model!r}",
                                          provider=self.provider)
            check_text(model, "model", self.provider)
            stripped = self._strip_prefix(model)
            if stripped is model:
                prefix, sep, _ = model.partition(":")
                if sep and is_provider_id(prefix):
                    raise InvalidRequestError(
                        f"model {model!r} is routed to provider {prefix!r}, but this connector is "
                        f"{self.provider!r}; use a fallback chain or get_connector({prefix!r})",
                        provider=self.provider)
            model = stripped or None
        resolved = model or default
        if not resolved:
            raise ConfigurationError(
                f"no {kind} model given and {self.provider} has no default {kind} model; "
                f"pass model=... or set default_{'embedding_' if kind == 'embedding' else ''}model",
                provider=self.provider)
        return resolved

    def _unsupported(self, capability: str, what: str | None = None) -> UnsupportedCapabilityError:
        subject = what or capability.replace("_", " ")
        return UnsupportedCapabilityError(
            f"{self.definition.name} does not support {subject} (capability {capability!r}); "
            f"it supports: {', '.join(sorted(self.capabilities))}",
            provider=self.provider)

    # -- execution: the call sequence (pipeline.py) around one attempt over HTTP ----------------

    def start(self, request: Req) -> Req:
        """Fix the absolute deadline of a request that has none yet (on anyio's clock)."""
        if request.deadline is None:
            return replace(request, deadline=anyio.current_time() + request.timeout)
        return request

    async def execute_chat(self, request: ChatRequest) -> ChatResponse:
        """Run a prepared chat request: cache → record → retry → breaker → limiter → one HTTP attempt."""
        return await self._pipeline.complete("chat", self.start(request), self._attempt_chat, self._chat_wire)

    async def open_stream(self, request: ChatRequest) -> OpenStream:
        """Open a prepared stream through the policies, up to its first chunk."""
        return await self._pipeline.open_stream(self.start(request), self._attempt_stream)

    async def execute_embedding(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Run a prepared embedding request, split into batches over the provider's limit."""
        return await self._pipeline.embed(self.start(request), self._attempt_embedding, self._embedding_wire,
                                          batch_size=self.embedding_batch_size,
                                          concurrency=self.embedding_concurrency)

    def count_fallback(self) -> None:
        """Count, in this connector's stats, a call that a fallback chain moved past it."""
        self._pipeline.stats.fallbacks += 1

    def secrets(self) -> list[Secret]:
        """Every credential this connector holds; scrubbed from any provider text we surface."""
        return self._credentials.secrets()

    def _chat_wire(self, request: ChatRequest) -> HTTPRequest:
        return _with_extra(self.build_chat_request(request), request.extra)

    def _embedding_wire(self, request: EmbeddingRequest) -> HTTPRequest:
        return _with_extra(self.build_embedding_request(request), request.extra)

    async def _attempt_chat(self, request: ChatRequest) -> ChatResponse:
        data = await self._sender.read_json(self._chat_wire(request), request.deadline, "chat response")
        return self.parse_chat_response(data, request)

    async def _attempt_embedding(self, request: EmbeddingRequest) -> EmbeddingResponse:
        data = await self._sender.read_json(self._embedding_wire(request), request.deadline, "embedding response")
        return self.parse_embedding_response(data, request)

    async def _attempt_stream(self, request: ChatRequest) -> OpenStream:
        return await self._sender.open_stream(self._chat_wire(request), self.create_stream_decoder(request),
                                              request.deadline)


def _flag(value: Any, what: str, provider: str | None = None) -> bool:
    if not isinstance(value, bool):
        error = InvalidRequestError if provider else ConfigurationError
        raise error(f"{what} must be True or False, got {type(value).__name__}", provider=provider)
    return value


def _refuse_unknown(cls_name: str, names: set[str]) -> None:
    """A misspelt keyword is a TypeError, as Python's own would be, with a hint."""
    if names:
        import difflib

        name = sorted(names)[0]
        close = difflib.get_close_matches(name, sorted(HTTP_OPTIONS | CALL_OPTIONS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"{cls_name}() got an unexpected keyword argument {name!r}{hint}")


def _with_extra(request: HTTPRequest, extra: dict[str, Any] | None) -> HTTPRequest:
    """The wire request with the caller's ``extra`` / ``provider_options`` body fields merged in."""
    if extra and isinstance(request.json, dict):
        request.json = _deep_merge(request.json, extra)
    return request


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` (nested dicts merged, everything else replaced)."""
    for key, value in extra.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            base[key] = _deep_merge(dict(current), value)
        else:
            base[key] = value
    return base
