"""OpenAI's Batch API (``/v1/files`` + ``/v1/batches``) as a :class:`~llm_connectors.batches.BatchTranslator`.

Shapes as openai 3.63.0 declares them (``types/batch.py``, ``batch_request_counts.py``,
``file_object.py``): the items go up as one JSONL file (``purpose=batch``) of
``{custom_id, method, url, body}`` lines, ``body`` being the very body ``generate_chat`` sends; the
job's ``status`` already uses the names of the common API. Results come in two JSONL files,
``output_file_id`` and ``error_file_id``, of ``{id, custom_id, response: {status_code, body}, error}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from ..base import BaseConnector
from ..batches import BatchCounts, BatchResultItem, BatchState, BatchTranslator, PreparedItem, multipart_file
from ..errors import InvalidRequestError, LLMConnectorError, ProtocolError, TimeoutError
from ..requests import ChatRequest, HTTPRequest
from ..wire import jsonio
from ..wire.shapes import Count, Shape, conform
from .openai_responses import ResponsesChatRequest

__all__ = ["OpenAIBatches", "epoch_time", "no_stream"]

#: The largest input file the Batch API takes (openai.com batch guide: 200 MB).
MAX_FILE_BYTES = 200 * 1024 * 1024
PAGE_SIZE = 100
_ENDED = ("completed", "failed", "expired", "cancelled")
_Status = Literal["validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling",
                  "cancelled"]


class _File(Shape):
    id: str
    object: Literal["file"]


class _Counts(Shape):
    completed: Count
    failed: Count
    total: Count


class _Batch(Shape):
    id: str
    object: Literal["batch"]
    status: _Status
    endpoint: str
    created_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    request_counts: _Counts | None = None


class _Page(Shape):
    data: list[Any]
    has_more: bool | None = None
    last_id: str | None = None


class _Response(Shape):
    status_code: int
    body: Any = None


class _Error(Shape):
    code: str | None = None
    message: str | None = None


class _Line(Shape):
    custom_id: str
    response: _Response | None = None
    error: _Error | None = None


class OpenAIBatches(BatchTranslator):
    """The Batch API for one OpenAI connector (its parsers read each answer)."""

    max_items = 50_000

    def __init__(self, connector: BaseConnector) -> None:
        self.connector = connector
        self.provider = connector.provider
        self.prefix = urlsplit(connector.base_url).path.rstrip("/")  # "/v1": batch urls are origin-relative

    async def upload(self, items: list[PreparedItem], read_json: Callable[[HTTPRequest], Awaitable[Any]]) -> Any:
        endpoint = self.endpoint_of(items)
        lines = ({"custom_id": item.custom_id, "method": "POST", "url": endpoint, "body": no_stream(item.wire.json)}
                 for item in items)
        return endpoint, await self.upload_file(lines, read_json)

    def endpoint_of(self, items: list[PreparedItem]) -> str:
        """The one endpoint (``/v1/chat/completions``) the items go to; a mix is refused before I/O."""
        endpoints = {item.wire.path for item in items}
        if len(endpoints) > 1:  # one job runs one endpoint
            raise InvalidRequestError(
                "the items of one batch must all use one API, but these mix Chat Completions and "
                "Responses; pass provider_options={'openai': {'api': 'chat'}} (or 'responses') to every item",
                provider=self.provider)
        return self.prefix + endpoints.pop()

    async def upload_file(self, lines: Iterable[Any], read_json: Callable[[HTTPRequest], Awaitable[Any]]) -> str:
        """Upload the lines as a ``purpose=batch`` JSONL file; its id."""
        content = b"".join(jsonio.dumps(line) + b"\n" for line in lines)
        if len(content) > MAX_FILE_BYTES:
            raise InvalidRequestError(f"the batch file would be {len(content)} bytes; {self.provider} takes at "
                                      f"most {MAX_FILE_BYTES}: split the items into several jobs",
                                      provider=self.provider)
        body, content_type = multipart_file({"purpose": "batch"}, "file", "batch.jsonl", content)
        data = await read_json(HTTPRequest("POST", "/files", headers={"content-type": content_type}, content=body))
        return conform(data, _File, provider=self.provider, what="file").id

    def build_create(self, items: list[PreparedItem], uploaded: Any) -> HTTPRequest:
        endpoint, file_id = uploaded
        return HTTPRequest("POST", "/batches", json={"input_file_id": file_id, "endpoint": endpoint,
                                                     "completion_window": "24h"})

    def build_get(self, batch_id: str) -> HTTPRequest:
        return HTTPRequest("GET", f"/batches/{quote(batch_id, safe='')}")

    def build_cancel(self, batch_id: str) -> HTTPRequest:
        return HTTPRequest("POST", f"/batches/{quote(batch_id, safe='')}/cancel")

    def build_list(self, cursor: str | None) -> HTTPRequest:
        params = {"limit": str(PAGE_SIZE)}
        if cursor:
            params["after"] = cursor
        return HTTPRequest("GET", "/batches", params=params)

    def parse_state(self, data: Any) -> BatchState:
        batch = conform(data, _Batch, provider=self.provider, what="batch")
        c = batch.request_counts
        counts = (BatchCounts(0) if c is None else
                  BatchCounts(c.total, succeeded=c.completed, errored=c.failed,
                              processing=max(0, c.total - c.completed - c.failed)))
        files = tuple(f for f in (batch.output_file_id, batch.error_file_id) if f)
        results = files if batch.status in _ENDED and files else None
        return BatchState(id=batch.id, status=batch.status, counts=counts, created_at=epoch_time(batch.created_at),
                          ended_at=epoch_time(batch.completed_at), expires_at=epoch_time(batch.expires_at),
                          results=(batch.endpoint, results) if results else None, raw=data)

    def parse_page(self, data: Any) -> tuple[list[BatchState], str | None]:
        page = conform(data, _Page, provider=self.provider, what="batch list")
        states = [self.parse_state(item) for item in page.data]
        cursor = (page.last_id or (states[-1].id if states else None)) if page.has_more else None
        return states, cursor

    def build_results(self, state: BatchState) -> list[HTTPRequest]:
        _, files = state.results
        return [HTTPRequest("GET", f"/files/{quote(f, safe='')}/content") for f in files]

    def parse_result(self, line: Any, state: BatchState) -> BatchResultItem:
        entry = conform(line, _Line, provider=self.provider, what="batch result")
        response = entry.response
        outcome: Any
        if response is not None and 200 <= response.status_code < 300:
            endpoint = state.results[0] if state.results else ""
            request = (ResponsesChatRequest if endpoint.endswith("/responses") else ChatRequest)("", (), {})
            try:
                outcome = self.connector.parse_chat_response(response.body, request)
            except LLMConnectorError as exc:
                outcome = exc  # a failed answer is that item's error, not the whole file's
        elif response is not None:
            outcome = self.connector.error_from_payload(response.body, status=response.status_code)
        elif entry.error is not None:
            outcome = _line_error(entry.error, self.provider)
        else:
            raise ProtocolError("a batch result line has neither a response nor an error", provider=self.provider)
        return entry.custom_id, outcome


def _line_error(error: _Error, provider: str) -> LLMConnectorError:
    message = error.message or "the request failed in the batch"
    if error.code == "batch_expired":
        return TimeoutError(message, provider=provider, code="expired")
    if error.code == "batch_cancelled":
        return LLMConnectorError(message, provider=provider, code="canceled")
    return LLMConnectorError(message, provider=provider, code=error.code)


def no_stream(body: Any) -> Any:
    """The body without streaming (items are prepared unstreamed; ``extra`` could still ask for it)."""
    if isinstance(body, dict) and body.get("stream"):
        body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    return body


def epoch_time(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return None
