"""A fake Mistral batch API (``/v1/batch/jobs`` + ``/v1/files``) for :class:`FakeServer`.

:class:`MistralBatchFake` is :class:`~llm_connectors.testing.openai_batch_wire.OpenAIBatchFake`'s job
life cycle under Mistral's paths and shapes (mistralai 3.7.0 ``models/batchjob.py``,
``createbatchjobrequest.py``, ``listbatchjobsresponse.py``): inline ``requests`` (at most 10,000) or
``input_files`` of ``{custom_id, body}`` lines, upper-case statuses, page-numbered listing. Each body
is answered by a :class:`~llm_connectors.testing.mistral_wire.MistralFake`, strict like the real API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .mistral_wire import MistralFake
from .openai_batch_wire import OpenAIBatchFake, _error, _Job
from .server import Reply, Request

__all__ = ["MistralBatchFake"]

_STATUS = {"validating": "QUEUED", "in_progress": "RUNNING", "finalizing": "RUNNING", "completed": "SUCCESS",
           "failed": "FAILED", "expired": "TIMEOUT_EXCEEDED", "cancelling": "CANCELLATION_REQUESTED",
           "cancelled": "CANCELLED"}
PATH = "/v1/batch/jobs"


class MistralBatchFake(OpenAIBatchFake):
    """Mistral batch jobs on top of a :class:`MistralFake`."""

    line_keys = frozenset({"custom_id", "body"})

    def __init__(self, chat: Any = None, *, polls: int = 1, outcomes: Mapping[str, str] | None = None) -> None:
        super().__init__(chat or MistralFake(), polls=polls, outcomes=outcomes)

    def __call__(self, request: Request) -> Reply:
        path, method = request.path, request.method
        if not path.startswith(PATH):
            return super().__call__(request)  # files, content, chat
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "Unauthorized", None)
        if path == PATH:
            return self.create(request.json()) if method == "POST" else self.listing(request.query)
        parts = path[len(PATH) + 1:].split("/")
        job = self.jobs.get(parts[0])
        if job is None:
            return _error(404, f"Batch job {parts[0]} not found", None)
        if parts[1:] == ["cancel"] and method == "POST":
            if job.status in ("validating", "in_progress"):
                job.cancelled, job.status = True, "cancelling"
            return Reply.json(self.record(job))
        self._advance(job)
        return Reply.json(self.record(job))

    def create(self, body: Any) -> Reply:
        inline, files = body.get("requests"), body.get("input_files")
        if (inline is None) == (files is None) or body.get("endpoint") != "/v1/chat/completions":
            return _error(422, "one of requests or input_files, and a supported endpoint, are required", None)
        if inline is not None:
            if not 1 <= len(inline) <= 10_000 or any(set(r) - self.line_keys for r in inline):
                return _error(422, "requests: 1 to 10000 items of {custom_id, body}", None)
            return Reply.json(self.record(self.add_job(inline, body["endpoint"], "")))
        lines = self.files.get(files[0]) if len(files) == 1 else None
        if lines is None:
            return _error(404, "input file not found", None)
        return Reply.json(self.record(self.add_job(lines, body["endpoint"], files[0])))

    def listing(self, query: Mapping[str, str]) -> Reply:
        page, size = int(query.get("page", "0")), int(query.get("page_size", "100"))
        ids = sorted(self.jobs, reverse=True)
        chosen = ids[page * size:(page + 1) * size]
        return Reply.json({"object": "list", "total": len(ids), "data": [self.record(self.jobs[i]) for i in chosen]})

    def record(self, job: _Job) -> dict[str, Any]:
        by_kind = {kind: file_id for file_id, kind in job.files.items()}
        total = job.counts.get("total", 0)
        done = job.counts.get("completed", 0) + job.counts.get("failed", 0)
        return {"id": job.id, "object": "batch", "input_files": [job.input_file_id] if job.input_file_id else [],
                "endpoint": job.endpoint, "model": None, "errors": [], "status": _STATUS[job.status],
                "created_at": 1_764_547_200, "total_requests": total, "completed_requests": done,
                "succeeded_requests": job.counts.get("completed", 0), "failed_requests": job.counts.get("failed", 0),
                "output_file": by_kind.get("output"), "error_file": by_kind.get("error"), "metadata": None,
                "started_at": None, "completed_at": None}
