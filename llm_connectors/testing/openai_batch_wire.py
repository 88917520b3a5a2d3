"""A fake OpenAI Batch API (``/v1/files`` + ``/v1/batches``) for :class:`FakeServer`.

:class:`OpenAIBatchFake` takes the multipart upload of a ``purpose=batch`` JSONL file, creates,
retrieves, cancels and lists jobs, and serves the output and error files, in the shapes openai
3.63.0 declares (``types/batch.py``, ``file_object.py``); every other path goes to an
:class:`OpenAIFake`, which also answers each line's ``body``. A job is ``validating``, then
``in_progress`` for ``polls`` retrievals, then ``completed``; a line whose ``url`` is not the job's
endpoint fails the whole job (``failed``, as OpenAI's validation does). ``outcomes`` scripts single
requests: ``"failed"`` (a 400 in the error file), ``"expired"`` (``batch_expired``); ``expire=True``
expires every request; a cancel ends the job with its requests ``batch_cancelled``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, cast

from .openai_wire import OpenAIFake
from .server import Reply, Request

__all__ = ["OpenAIBatchFake"]

_ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions")
_CHUNK_BYTES = 64 << 10


@dataclass
class _Job:
    id: str
    endpoint: str
    input_file_id: str
    lines: Sequence[dict[str, Any]]
    polls_left: int
    status: str = "validating"
    cancelled: bool = False
    files: dict[str, str] = field(default_factory=dict)  # output_file_id / error_file_id -> kind
    counts: dict[str, int] = field(default_factory=dict)


class OpenAIBatchFake:
    """The Batch API on top of an :class:`OpenAIFake`."""

    #: The fields of one line of an input file.
    line_keys = frozenset({"custom_id", "method", "url", "body"})

    def __init__(self, chat: Any = None, *, polls: int = 1, outcomes: Mapping[str, str] | None = None) -> None:
        self.chat: Any = chat or OpenAIFake()
        self.polls = polls
        self.outcomes = dict(outcomes or {})
        self.expire = False
        self.files: dict[str, Sequence[dict[str, Any]]] = {}
        self.outputs: dict[str, tuple[_Job, str]] = {}  # file id -> (job, "output" | "error")
        self.jobs: dict[str, _Job] = {}

    def __call__(self, request: Request) -> Reply:
        path, method = request.path, request.method
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "You didn't provide an API key.", "invalid_api_key")
        if path == "/v1/files" and method == "POST":
            return self.upload(request)
        if path.startswith("/v1/files/") and path.endswith("/content") and method == "GET":
            return self.content(path.split("/")[3])
        if path == "/v1/batches":
            return self.create(request.json()) if method == "POST" else self.listing(request.query)
        if path.startswith("/v1/batches/"):
            parts = path.split("/")[3:]
            job = self.jobs.get(parts[0])
            if job is None:
                return _error(404, f"No batch found with id '{parts[0]}'.", None)
            if len(parts) == 2 and parts[1] == "cancel" and method == "POST":
                if job.status in ("validating", "in_progress", "finalizing"):
                    job.cancelled, job.status = True, "cancelling"
                return Reply.json(self.record(job))
            self._advance(job)
            return Reply.json(self.record(job))
        reply: Reply = self.chat(request)
        return reply

    def upload(self, request: Request) -> Reply:
        message = BytesParser(policy=HTTP).parsebytes(
            b"content-type: " + request.headers.get("content-type", "").encode() + b"\r\n\r\n" + request.body)
        if not message.is_multipart():
            return _error(400, "expected multipart/form-data", None)
        fields: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = cast(bytes, part.get_payload(decode=True))
        if fields.get("purpose") != b"batch" or "file" not in fields:
            return _error(400, "purpose must be 'batch' and a file is required", None)
        lines = []
        seen: set[str] = set()
        for number, raw in enumerate(fields["file"].splitlines(), 1):
            line = json.loads(raw)
            if set(line) != self.line_keys or line["custom_id"] in seen:
                return _error(400, f"line {number}: invalid request or duplicated custom_id", None)
            seen.add(line["custom_id"])
            lines.append(line)
        file_id = f"file-{len(self.files) + 1:04d}"
        self.files[file_id] = lines
        return Reply.json({"id": file_id, "object": "file", "bytes": len(fields["file"]), "created_at": 1_764_547_200,
                           "filename": "batch.jsonl", "purpose": "batch", "status": "processed"})

    def create(self, body: Any) -> Reply:
        lines = self.files.get(body.get("input_file_id", ""))
        if lines is None or body.get("endpoint") not in _ENDPOINTS or body.get("completion_window") != "24h":
            return _error(400, "input_file_id, endpoint and completion_window='24h' are required", None)
        return Reply.json(self.record(self.add_job(lines, body["endpoint"], body["input_file_id"])))

    def add_job(self, lines: Sequence[dict[str, Any]], endpoint: str = "/v1/chat/completions",
                input_file_id: str = "file-seeded") -> _Job:
        """A job as if created (tests seed large ones without uploading them)."""
        job = _Job(f"batch_{len(self.jobs) + 1:04d}", endpoint, input_file_id, lines, self.polls)
        job.counts = {"total": 0, "completed": 0, "failed": 0}
        self.jobs[job.id] = job
        return job

    def listing(self, query: Mapping[str, str]) -> Reply:
        limit = int(query.get("limit", "20"))
        ids = sorted(self.jobs, reverse=True)
        after = query.get("after")
        start = ids.index(after) + 1 if after in ids else 0
        page = ids[start:start + limit]
        return Reply.json({"object": "list", "data": [self.record(self.jobs[i]) for i in page],
                           "first_id": page[0] if page else None, "last_id": page[-1] if page else None,
                           "has_more": start + limit < len(ids)})

    def record(self, job: _Job) -> dict[str, Any]:
        by_kind = {kind: file_id for file_id, kind in job.files.items()}
        return {"id": job.id, "object": "batch", "endpoint": job.endpoint, "input_file_id": job.input_file_id,
                "completion_window": "24h", "status": job.status, "created_at": 1_764_547_200,
                "expires_at": 1_764_633_600, "output_file_id": by_kind.get("output"),
                "error_file_id": by_kind.get("error"), "errors": None, "metadata": None,
                "request_counts": dict(job.counts)}

    def _advance(self, job: _Job) -> None:
        if job.status == "validating":
            if any(line.get("url", job.endpoint) != job.endpoint for line in job.lines):
                job.status = "failed"
                return
            job.status = "in_progress"
            job.counts["total"] = len(job.lines)
            return
        if job.status not in ("in_progress", "cancelling"):
            return
        if job.polls_left > 0 and not job.cancelled:
            job.polls_left -= 1
            return
        kinds = [self._kind(job, line["custom_id"]) for line in job.lines]
        job.counts["completed"] = kinds.count("succeeded")
        job.counts["failed"] = len(kinds) - job.counts["completed"]
        job.status = "cancelled" if job.cancelled else "expired" if self.expire else "completed"
        for kind in ("output", "error"):
            if (kind == "output" and job.counts["completed"]) or (kind == "error" and job.counts["failed"]):
                file_id = f"file-{job.id}-{kind}"
                job.files[file_id] = kind
                self.outputs[file_id] = (job, kind)

    def _kind(self, job: _Job, custom_id: str) -> str:
        if job.cancelled:
            return "batch_cancelled"
        if self.expire:
            return "batch_expired"
        return {"failed": "failed", "expired": "batch_expired"}.get(self.outcomes.get(custom_id, ""), "succeeded")

    def content(self, file_id: str) -> Reply:
        found = self.outputs.get(file_id)
        if found is None:
            return _error(404, f"No such File object: {file_id}", None)
        job, kind = found
        return Reply(200, {"content-type": "application/octet-stream"},
                     chunks=cast("Sequence[bytes | float]", self._lines(job, kind)))

    def _lines(self, job: _Job, kind: str) -> Iterator[bytes]:
        buffer: list[bytes] = []
        size = 0
        for number, line in enumerate(job.lines):
            outcome = self._kind(job, line["custom_id"])
            if (outcome == "succeeded") != (kind == "output"):
                continue
            entry: dict[str, Any] = {"id": f"batch_req_{number:06d}", "custom_id": line["custom_id"],
                                     "response": None, "error": None}
            if outcome == "succeeded":
                answer = self.chat.responses if job.endpoint == "/v1/responses" else self.chat.chat
                reply = answer(line["body"])
                entry["response"] = {"status_code": reply.status, "request_id": f"req_{number}",
                                     "body": json.loads(reply.body)}
            elif outcome == "failed":
                entry["response"] = {"status_code": 400, "request_id": f"req_{number}", "body": {"error": {
                    "message": "scripted invalid request", "type": "invalid_request_error", "param": None,
                    "code": None}}}
            else:
                entry["error"] = {"code": outcome, "message": f"This request could not be executed ({outcome})."}
            data = json.dumps(entry).encode() + b"\n"
            buffer.append(data)
            size += len(data)
            if size >= _CHUNK_BYTES:
                yield b"".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield b"".join(buffer)


def _error(status: int, message: str, code: str | None) -> Reply:
    return Reply.json({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": code}}, status)
