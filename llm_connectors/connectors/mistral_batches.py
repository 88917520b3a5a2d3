"""Mistral batch jobs (``/v1/batch/jobs``, ``/v1/files``) as a :class:`~llm_connectors.batches.BatchTranslator`.

Shapes as mistralai 3.7.0 declares them (``models/batchjob.py``, ``createbatchjobrequest.py``,
``listbatchjobsresponse.py``) and the OpenAPI spec: up to 10,000 requests go inline in the create
body (``requests: [{custom_id, body}]``), more as an uploaded JSONL file (``input_files``). Results are
JSONL files (``output_file``, ``error_file``) read like OpenAI's, so the parsing is shared.
Statuses: ``QUEUED`` is ``validating`` (accepted, not started), ``RUNNING`` ``in_progress``,
``SUCCESS`` ``completed``, ``FAILED`` ``failed``, ``TIMEOUT_EXCEEDED`` ``expired``,
``CANCELLATION_REQUESTED`` ``cancelling``, ``CANCELLED`` ``cancelled``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import quote

from ..base import BaseConnector
from ..batches import BatchCounts, BatchState, BatchStatus, PreparedItem
from ..requests import HTTPRequest
from ..wire.shapes import Count, Shape, conform
from .openai_batches import OpenAIBatches, epoch_time, no_stream

__all__ = ["MistralBatches"]

#: Most requests the create body takes inline (the spec's ``maxItems``); more go up as a file.
INLINE_MAX = 10_000
PAGE_SIZE = 100
_STATUS: dict[str, BatchStatus] = {
    "QUEUED": "validating", "RUNNING": "in_progress", "SUCCESS": "completed", "FAILED": "failed",
    "TIMEOUT_EXCEEDED": "expired", "CANCELLATION_REQUESTED": "cancelling", "CANCELLED": "cancelled",
}
_ENDED = ("completed", "failed", "expired", "cancelled")


class _Job(Shape):
    id: str
    object: Literal["batch"]
    status: Literal["QUEUED", "RUNNING", "SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLATION_REQUESTED",
                    "CANCELLED"]
    endpoint: str
    total_requests: Count
    succeeded_requests: Count
    failed_requests: Count
    created_at: int | None = None
    completed_at: int | None = None
    output_file: str | None = None
    error_file: str | None = None


class _Page(Shape):
    total: Count
    data: list[Any] | None = None


class MistralBatches(OpenAIBatches):
    """Batch jobs for one Mistral connector."""

    max_items = 1_000_000

    def __init__(self, connector: BaseConnector) -> None:
        super().__init__(connector)
        self._page = 0  # the listing is numbered by page; each list_batches() has its own translator

    async def upload(self, items: list[PreparedItem], read_json: Callable[[HTTPRequest], Awaitable[Any]]) -> Any:
        endpoint = self.endpoint_of(items)
        if len(items) <= INLINE_MAX:
            return endpoint, None
        return endpoint, await self.upload_file(_lines(items), read_json)

    def build_create(self, items: list[PreparedItem], uploaded: Any) -> HTTPRequest:
        endpoint, file_id = uploaded
        body: dict[str, Any] = {"endpoint": endpoint}
        if file_id is None:
            body["requests"] = list(_lines(items))
        else:
            body["input_files"] = [file_id]
        return HTTPRequest("POST", "/batch/jobs", json=body)

    def build_get(self, batch_id: str) -> HTTPRequest:
        return HTTPRequest("GET", f"/batch/jobs/{quote(batch_id, safe='')}")

    def build_cancel(self, batch_id: str) -> HTTPRequest:
        return HTTPRequest("POST", f"/batch/jobs/{quote(batch_id, safe='')}/cancel")

    def build_list(self, cursor: str | None) -> HTTPRequest:
        self._page = int(cursor or 0)
        return HTTPRequest("GET", "/batch/jobs", params={"page": str(self._page), "page_size": str(PAGE_SIZE)})

    def parse_state(self, data: Any) -> BatchState:
        job = conform(data, _Job, provider=self.provider, what="batch job")
        done = job.succeeded_requests + job.failed_requests
        counts = BatchCounts(job.total_requests, succeeded=job.succeeded_requests, errored=job.failed_requests,
                             processing=max(0, job.total_requests - done))
        status = _STATUS[job.status]
        files = tuple(f for f in (job.output_file, job.error_file) if f)
        return BatchState(id=job.id, status=status, counts=counts, created_at=epoch_time(job.created_at),
                          ended_at=epoch_time(job.completed_at),
                          results=(job.endpoint, files) if status in _ENDED and files else None, raw=data)

    def parse_page(self, data: Any) -> tuple[list[BatchState], str | None]:
        page = conform(data, _Page, provider=self.provider, what="batch job list")
        states = [self.parse_state(item) for item in page.data or ()]
        more = states and (self._page + 1) * PAGE_SIZE < page.total
        return states, str(self._page + 1) if more else None


def _lines(items: list[PreparedItem]) -> Any:
    return ({"custom_id": item.custom_id, "body": no_stream(item.wire.json)} for item in items)
