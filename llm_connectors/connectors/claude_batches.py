"""Anthropic Message Batches (``/v1/messages/batches``) as a :class:`~llm_connectors.batches.BatchTranslator`.

Shapes as anthropic 2.17.0 declares them (``types/messages/message_batch*.py``): a job has a
``processing_status`` of ``in_progress``, ``canceling`` or ``ended`` and ``request_counts``; once
ended, ``results_url`` names a JSONL file of ``{custom_id, result}`` lines whose ``result.type`` is
``succeeded`` (a Message), ``errored`` (an error response), ``canceled`` or ``expired``. Each request's
``params`` is the very body ``generate_chat`` would send.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from ..base import BaseConnector
from ..batches import BatchCounts, BatchResultItem, BatchState, BatchStatus, BatchTranslator, PreparedItem
from ..errors import LLMConnectorError, ProtocolError, TimeoutError
from ..requests import ChatRequest, HTTPRequest
from ..wire.shapes import Count, Shape, conform
from .claude_stream import Name

__all__ = ["BATCHES_PATH", "ClaudeBatches"]

BATCHES_PATH = "/v1/messages/batches"
#: Jobs asked for per page of the listing (the API allows 1-1000).
PAGE_SIZE = 100
_NO_REQUEST = ChatRequest(model="", messages=(), params={})


class _Counts(Shape):
    processing: Count
    succeeded: Count
    errored: Count
    canceled: Count
    expired: Count


class _Batch(Shape):
    id: Name
    type: Literal["message_batch"]
    processing_status: Literal["in_progress", "canceling", "ended"]
    request_counts: _Counts
    created_at: str | None = None
    ended_at: str | None = None
    expires_at: str | None = None
    cancel_initiated_at: str | None = None
    results_url: str | None = None


class _Page(Shape):
    data: list[Any]
    has_more: bool | None = None
    last_id: str | None = None


class _Result(Shape):
    type: Literal["succeeded", "errored", "canceled", "expired"]
    message: Any = None
    error: Any = None


class _Line(Shape):
    custom_id: Name
    result: _Result


class ClaudeBatches(BatchTranslator):
    """Message Batches for one Claude connector (its parser reads each succeeded message)."""

    custom_id_pattern = re.compile(r"[a-zA-Z0-9_-]{1,64}")
    max_items = 100_000

    def __init__(self, connector: BaseConnector) -> None:
        self.connector = connector
        self.provider = connector.provider

    def build_create(self, items: list[PreparedItem], uploaded: Any) -> HTTPRequest:
        requests = []
        for item in items:
            params = dict(item.wire.json)
            params.pop("stream", None)  # a batch request never streams
            requests.append({"custom_id": item.custom_id, "params": params})
        return HTTPRequest("POST", BATCHES_PATH, json={"requests": requests})

    def build_get(self, batch_id: str) -> HTTPRequest:
        return HTTPRequest("GET", f"{BATCHES_PATH}/{_segment(batch_id)}")

    def build_cancel(self, batch_id: str) -> HTTPRequest:
        return HTTPRequest("POST", f"{BATCHES_PATH}/{_segment(batch_id)}/cancel")

    def build_list(self, cursor: str | None) -> HTTPRequest:
        params = {"limit": str(PAGE_SIZE)}
        if cursor:
            params["after_id"] = cursor
        return HTTPRequest("GET", BATCHES_PATH, params=params)

    def parse_state(self, data: Any) -> BatchState:
        batch = conform(data, _Batch, provider=self.provider, what="message batch")
        c = batch.request_counts
        counts = BatchCounts(total=c.processing + c.succeeded + c.errored + c.canceled + c.expired,
                             succeeded=c.succeeded, errored=c.errored, processing=c.processing,
                             cancelled=c.canceled, expired=c.expired)
        results = None
        if batch.processing_status == "ended" and batch.results_url:
            # Only the path is used: the credentials go to the configured base URL and nowhere else.
            results = urlsplit(batch.results_url).path or None
        return BatchState(id=batch.id, status=_status(batch, counts), counts=counts, created_at=batch.created_at,
                          ended_at=batch.ended_at, expires_at=batch.expires_at, results=results, raw=data)

    def parse_page(self, data: Any) -> tuple[list[BatchState], str | None]:
        page = conform(data, _Page, provider=self.provider, what="message batch list")
        states = [self.parse_state(item) for item in page.data]
        cursor = (page.last_id or (states[-1].id if states else None)) if page.has_more else None
        return states, cursor

    def build_results(self, state: BatchState) -> list[HTTPRequest]:
        # The SDK asks for the file with Accept: application/binary (resources/messages/batches.py).
        return [HTTPRequest("GET", str(state.results), headers={"accept": "application/binary"})]

    def parse_result(self, line: Any, state: BatchState) -> BatchResultItem:
        entry = conform(line, _Line, provider=self.provider, what="message batch result")
        result = entry.result
        outcome: Any
        if result.type == "succeeded":
            if not isinstance(result.message, dict):
                raise ProtocolError("a succeeded message batch result has no message", provider=self.provider)
            outcome = self.connector.parse_chat_response(result.message, _NO_REQUEST)
        elif result.type == "errored":
            if not isinstance(result.error, dict):
                raise ProtocolError("an errored message batch result has no error", provider=self.provider)
            outcome = self.connector.error_from_payload(result.error)
        elif result.type == "expired":
            outcome = TimeoutError("the batch expired before this request ran", provider=self.provider,
                                   code="expired")
        else:
            outcome = LLMConnectorError("the batch was cancelled before this request ran", provider=self.provider,
                                        code="canceled")
        return entry.custom_id, outcome


def _status(batch: _Batch, counts: BatchCounts) -> BatchStatus:
    if batch.processing_status == "in_progress":
        return "in_progress"
    if batch.processing_status == "canceling":
        return "cancelling"
    if batch.cancel_initiated_at:
        return "cancelled"
    if counts.expired and not counts.succeeded and not counts.errored:
        return "expired"
    return "completed"


def _segment(batch_id: str) -> str:
    """A batch id as one URL path segment (an id is the caller's input when resuming)."""
    return quote(batch_id, safe="")
