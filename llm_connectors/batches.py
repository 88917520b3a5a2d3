"""Provider batch jobs: many chat requests submitted at once, run offline at batch prices.

The flow is the same for every provider; what differs is a :class:`BatchTranslator` (pure: requests
built, answers read) that a connector with a batch API returns from ``batch_translator()``. Each item
is validated by the connector's own ``prepare_chat`` and its body built by the same translator as a
live call before anything is sent; results are read from the provider's JSONL file line by line, so a
file of any size is streamed in bounded memory.
"""

from __future__ import annotations

import abc
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import httpx

from .errors import BuiltinTimeoutError, InvalidRequestError, LLMConnectorError, TimeoutError
from .http.bodies import content_encoding, reader_of
from .http.decode import BoundedDecoder
from .http.sender import MAX_COMPRESSED_STREAM_BYTES, HTTPSender
from .pricing import estimate_cost
from .requests import ChatRequest, HTTPRequest
from .types import ChatResponse
from .wire.classify import transport_error
from .wire.framing import NDJSONDecoder

__all__ = ["BatchCounts", "BatchJob", "BatchState", "BatchStatus", "BatchTranslator", "PreparedItem"]

BatchStatus = Literal["validating", "in_progress", "finalizing", "completed", "failed", "expired",
                      "cancelling", "cancelled"]
#: The statuses a job does not leave.
ENDED: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})
#: Pages of jobs ``list_batches`` follows at most (a provider that never ends its listing is a bug).
MAX_LIST_PAGES = 1000
BatchResultItem = tuple[str, "ChatResponse | LLMConnectorError"]
ProgressCallback = Callable[["BatchJob"], Any]


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """Requests of a job by outcome, as far as the provider reports them (zero where it does not)."""

    total: int
    succeeded: int = 0
    errored: int = 0
    processing: int = 0
    cancelled: int = 0
    expired: int = 0


@dataclass(frozen=True, slots=True)
class BatchState:
    """One provider answer about a job, read by a translator.

    Attributes:
        results: What the translator needs to fetch the results (a URL path, file ids), or ``None``
            while there are none.
    """

    id: str
    status: BatchStatus
    counts: BatchCounts
    created_at: str | None = None
    ended_at: str | None = None
    expires_at: str | None = None
    results: Any = None
    raw: Any = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PreparedItem:
    """One validated item: its id, the chat request and the wire request a live call would send."""

    custom_id: str
    request: ChatRequest
    wire: HTTPRequest


class BatchTranslator(abc.ABC):
    """A provider's batch API, as pure translation (no I/O); the base class sends what it builds."""

    #: The custom ids the provider accepts.
    custom_id_pattern: re.Pattern[str] | None = None
    #: Most requests in one job.
    max_items: int = 50_000

    @abc.abstractmethod
    def build_create(self, items: list[PreparedItem], uploaded: Any) -> HTTPRequest:
        """The request that creates a job of these items (``uploaded``: what :meth:`upload` returned)."""

    @abc.abstractmethod
    def build_get(self, batch_id: str) -> HTTPRequest: ...

    @abc.abstractmethod
    def build_cancel(self, batch_id: str) -> HTTPRequest: ...

    @abc.abstractmethod
    def build_list(self, cursor: str | None) -> HTTPRequest: ...

    @abc.abstractmethod
    def parse_state(self, data: Any) -> BatchState:
        """A job object of the provider's; garbage is a ProtocolError."""

    @abc.abstractmethod
    def parse_page(self, data: Any) -> tuple[list[BatchState], str | None]:
        """One page of jobs and the cursor of the next (``None`` when done)."""

    @abc.abstractmethod
    def build_results(self, state: BatchState) -> list[HTTPRequest]:
        """The results files to stream, in order (a provider may keep errors in a file of their own)."""

    @abc.abstractmethod
    def parse_result(self, line: Any, state: BatchState) -> BatchResultItem:
        """One line of a results file: the item's custom id and its answer or typed error."""

    async def upload(self, items: list[PreparedItem], read_json: Callable[[HTTPRequest], Awaitable[Any]]) -> Any:
        """Steps before :meth:`build_create` (a file upload); returns what ``build_create`` needs."""
        return None


def prepare_items(items: Iterable[Mapping[str, Any]], translator: BatchTranslator, provider: str,
                  prepare: Callable[[Any, Any, Mapping[str, Any]], ChatRequest],
                  wire: Callable[[ChatRequest], HTTPRequest]) -> list[PreparedItem]:
    """Validate every item (as ``generate_chat`` would) and build its body; raises before any I/O."""
    if isinstance(items, (str, bytes, Mapping)):
        raise InvalidRequestError("submit_batch takes a list of items (dicts with custom_id and messages)",
                                  provider=provider)
    prepared: list[PreparedItem] = []
    seen: set[str] = set()
    pattern = translator.custom_id_pattern
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidRequestError(f"batch item {index} must be a dict with custom_id and messages, "
                                      f"got {type(item).__name__}", provider=provider)
        options = dict(item)
        custom_id = options.pop("custom_id", None)
        if not isinstance(custom_id, str) or not custom_id:
            raise InvalidRequestError(f"batch item {index} needs a custom_id (a non-empty string) to match "
                                      "its result to it", provider=provider)
        if pattern is not None and not pattern.fullmatch(custom_id):
            raise InvalidRequestError(f"batch item {index}: custom_id {custom_id[:80]!r} must match "
                                      f"{pattern.pattern} at {provider}", provider=provider)
        if custom_id in seen:
            raise InvalidRequestError(f"batch item {index}: custom_id {custom_id!r} is used twice; each item "
                                      "needs its own", provider=provider)
        seen.add(custom_id)
        if "stream" in options:
            raise InvalidRequestError(f"batch item {custom_id!r}: a batch item cannot stream; remove 'stream'",
                                      provider=provider)
        model = options.pop("model", None)
        messages = options.pop("messages", None)
        if messages is None:
            raise InvalidRequestError(f"batch item {custom_id!r} has no messages", provider=provider)
        try:
            request = prepare(model, messages, options)
        except LLMConnectorError as exc:
            exc.message = f"batch item {custom_id!r}: {exc.message}"
            exc.args = (exc.message,)
            raise
        prepared.append(PreparedItem(custom_id, request, wire(request)))
        if len(prepared) > translator.max_items:
            raise InvalidRequestError(f"a {provider} batch takes at most {translator.max_items} requests; "
                                      "split the items into several jobs", provider=provider)
    if not prepared:
        raise InvalidRequestError("submit_batch got no items", provider=provider)
    return prepared


class BatchClient:
    """The I/O of batch jobs for one connector: its translator and its HTTP sender."""

    def __init__(self, provider: str, translator: BatchTranslator, sender: HTTPSender, timeout: float, *,
                 catalog_id: str) -> None:
        self.provider = provider
        self.catalog_id = catalog_id  # whose prices apply (provider may be a custom id)
        self.translator = translator
        self._sender = sender
        self._timeout = timeout

    async def read_json(self, request: HTTPRequest, what: str = "batch") -> Any:
        return await self._sender.read_json(request, anyio.current_time() + self._timeout, what)

    async def state(self, request: HTTPRequest) -> BatchState:
        return self.translator.parse_state(await self.read_json(request))

    async def submit(self, items: list[PreparedItem]) -> BatchJob:
        uploaded = await self.translator.upload(items, self.read_json)
        return BatchJob(self, await self.state(self.translator.build_create(items, uploaded)))

    async def get(self, batch_id: str) -> BatchJob:
        if not isinstance(batch_id, str) or not batch_id.strip():
            raise InvalidRequestError(f"batch id must be a non-empty string, got {batch_id!r}",
                                      provider=self.provider)
        return BatchJob(self, await self.state(self.translator.build_get(batch_id)))

    async def iterate(self) -> AsyncIterator[BatchJob]:
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            page, cursor = self.translator.parse_page(await self.read_json(self.translator.build_list(cursor)))
            for state in page:
                yield BatchJob(self, state)
            if not cursor:
                return

    async def lines(self, request: HTTPRequest) -> AsyncIterator[Any]:
        """The JSON lines of a results file, read piece by piece (each line bounded like a body)."""
        sender = self._sender
        try:
            response = await sender.send(request, stream=True)
        except (httpx.HTTPError, BuiltinTimeoutError) as exc:
            raise transport_error(exc, self.provider, "opening batch results") from exc
        try:
            framer = NDJSONDecoder(max_line=sender.config.max_body_bytes, provider=self.provider)
            encoding = content_encoding(response)
            inflate = (None if encoding is None
                       else BoundedDecoder(encoding, MAX_COMPRESSED_STREAM_BYTES, self.provider).feed)
            read = reader_of(response)
            while True:
                try:
                    data = await read()  # the engine's read (idle) timeout bounds each read
                except (httpx.HTTPError, BuiltinTimeoutError) as exc:
                    raise transport_error(exc, self.provider, "reading batch results") from exc
                if not data:
                    break
                for line in framer.feed(inflate(data) if inflate is not None else data):
                    yield line
            for line in framer.close():
                yield line
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()


class BatchJob:
    """A provider batch job: its state as last read, and the calls that move it on.

    Attributes:
        id: The provider's job id (``conn.get_batch(id)`` resumes it, in any process).
        provider: The connector's provider id.
        status: ``validating``, ``in_progress``, ``finalizing``, ``completed``, ``failed``, ``expired``,
            ``cancelling`` or ``cancelled``.
        counts: Requests by outcome, as the provider reports them.
        estimated_cost: USD at the catalog's batch prices, summed over the results read so far
            (``None`` until a priced result is read).
    """

    def __init__(self, client: BatchClient, state: BatchState) -> None:
        self._client = client
        self.state = state
        self.provider = client.provider
        self.estimated_cost: float | None = None

    @property
    def id(self) -> str:
        return self.state.id

    @property
    def status(self) -> BatchStatus:
        return self.state.status

    @property
    def counts(self) -> BatchCounts:
        return self.state.counts

    @property
    def done(self) -> bool:
        """Whether the job has ended (completed, failed, expired or cancelled)."""
        return self.state.status in ENDED

    async def refresh(self) -> BatchJob:
        """Read the job's state again; returns the job."""
        self.state = await self._client.state(self._client.translator.build_get(self.id))
        return self

    async def cancel(self) -> BatchJob:
        """Ask the provider to cancel; requests already finished keep their results."""
        self.state = await self._client.state(self._client.translator.build_cancel(self.id))
        return self

    async def wait(self, *, poll_interval: float = 30.0, timeout: float | None = None,
                   on_progress: ProgressCallback | None = None) -> BatchJob:
        """Refresh every ``poll_interval`` seconds until the job ends; ``on_progress(job)`` after each
        refresh (it may be async). Raises :class:`~llm_connectors.TimeoutError` after ``timeout``
        seconds (on anyio's clock); the job runs on at the provider."""
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or poll_interval <= 0:
            raise InvalidRequestError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}",
                                      provider=self.provider)
        deadline = None if timeout is None else anyio.current_time() + timeout
        while not self.done:
            if deadline is not None and anyio.current_time() + poll_interval > deadline:
                raise TimeoutError(f"batch {self.id} had not ended after {timeout:g} s (status {self.status}); "
                                   "it keeps running: wait again or get_batch(id) later", provider=self.provider)
            await anyio.sleep(poll_interval)
            await self.refresh()
            if on_progress is not None:
                outcome = on_progress(self)
                if isinstance(outcome, Awaitable):
                    await outcome
        return self

    async def results(self) -> AsyncIterator[BatchResultItem]:
        """``(custom_id, ChatResponse or typed error)`` for every item, streamed from the results file
        (not in submission order). The job must have ended."""
        state = self.state
        if state.results is None:
            raise InvalidRequestError(f"batch {self.id} has no results yet (status {self.status}); "
                                      "await job.wait() first", provider=self.provider)
        client = self._client
        for request in client.translator.build_results(state):
            async for line in client.lines(request):
                custom_id, result = client.translator.parse_result(line, state)
                if isinstance(result, ChatResponse):
                    cost = estimate_cost(client.catalog_id, result.model, result.usage, batch=True)
                    if cost is not None:
                        self.estimated_cost = (self.estimated_cost or 0.0) + cost
                yield custom_id, result

    def __repr__(self) -> str:
        return f"<BatchJob {self.provider} {self.id} {self.status} {self.counts}>"


def multipart_file(fields: dict[str, str], name: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body: the fields, then one file. Written here because the engines send
    bytes (httpx's encoder is private and aiohttp has its own); the boundary is random, so no line of the
    file can end the part early."""
    boundary = secrets.token_hex(16)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                 "Content-Type: application/jsonl\r\n\r\n".encode())
    return b"".join([*parts, content, f"\r\n--{boundary}--\r\n".encode()]), f"multipart/form-data; boundary={boundary}"
