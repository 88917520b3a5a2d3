"""A fake Anthropic Message Batches API (``/v1/messages/batches``) for :class:`FakeServer`.

:class:`ClaudeBatchFake` answers create, retrieve, cancel, list and the results file in the shapes
anthropic 2.17.0 declares (``types/messages/message_batch*.py``) and hands every other path to a
:class:`ClaudeFake`. Each request's ``params`` is answered by that fake's Messages endpoint, so a body
the live API would refuse comes back as an ``errored`` result, as it does at Anthropic. A job stays
``in_progress`` for ``polls`` retrievals, then ends; ``outcomes`` scripts single requests
(``errored``, ``expired``, ``canceled``), ``expire=True`` expires every request not yet run, and a
cancel ends the job with its requests ``canceled``. The results file is written line by line as it
is sent, never held whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from .claude_wire import REQUEST_ID, ClaudeFake, error_body
from .server import Reply, Request

__all__ = ["ClaudeBatchFake"]

PATH = "/v1/messages/batches"
_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_CHUNK_BYTES = 64 << 10
_TIME = "2026-12-01T00:00:00Z"


@dataclass
class _Job:
    id: str
    requests: Sequence[tuple[str, Any]]  # (custom_id, params)
    polls_left: int
    version: str
    status: str = "in_progress"
    cancelled: bool = False
    expired: bool = False
    counts: dict[str, int] = field(default_factory=dict)


class ClaudeBatchFake:
    """Message Batches on top of a :class:`ClaudeFake` (which answers each request's ``params``)."""

    def __init__(self, chat: ClaudeFake | None = None, *, polls: int = 1,
                 outcomes: Mapping[str, str] | None = None, origin: str = "https://api.anthropic.com") -> None:
        self.chat = chat or ClaudeFake()
        self.polls = polls
        self.outcomes = dict(outcomes or {})
        self.expire = False
        self.origin = origin  # results_url points here (the client uses only its path)
        self.jobs: dict[str, _Job] = {}

    def __call__(self, request: Request) -> Reply:
        if not request.path.startswith(PATH):
            return self.chat(request)
        refused = self.chat.check_headers(request)
        if refused is not None:
            return refused
        parts = request.path[len(PATH):].strip("/").split("/") if request.path != PATH else []
        if not parts:
            if request.method == "POST":
                return self.create(request.json(), request.headers.get("anthropic-version", ""))
            if request.method == "GET":
                return self.listing(request.query)
        job = self.jobs.get(parts[0]) if parts else None
        if job is None:
            return _error(404, f"batch {parts[0] if parts else ''!r} not found")
        if len(parts) == 1 and request.method == "GET":
            self._advance(job)
            return Reply.json(self.record(job), headers={"request-id": REQUEST_ID})
        if parts[1:] == ["cancel"] and request.method == "POST":
            if job.status == "in_progress":
                job.cancelled, job.status = True, "canceling"
            return Reply.json(self.record(job), headers={"request-id": REQUEST_ID})
        if parts[1:] == ["results"] and request.method == "GET":
            if job.status != "ended":
                return _error(400, f"batch {job.id} is still processing")
            return Reply(200, {"content-type": "application/binary"},
                         chunks=cast("Sequence[bytes | float]", self._results(job)))
        return _error(404, f"Not found: {request.method} {request.path}")

    def create(self, body: Any, version: str) -> Reply:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _error(400, "requests: field required (a non-empty list)")
        seen: set[str] = set()
        pairs = []
        for i, item in enumerate(requests):
            if not isinstance(item, dict) or set(item) != {"custom_id", "params"}:
                return _error(400, f"requests.{i}: custom_id and params required, nothing else")
            custom_id = item["custom_id"]
            if not isinstance(custom_id, str) or not _ID.fullmatch(custom_id) or custom_id in seen:
                return _error(400, f"requests.{i}.custom_id: invalid or duplicated")
            seen.add(custom_id)
            pairs.append((custom_id, item["params"]))
        return Reply.json(self.record(self.add_job(pairs, version)), headers={"request-id": REQUEST_ID})

    def add_job(self, requests: Sequence[tuple[str, Any]], version: str = "2026-10-21") -> _Job:
        """A job as if created (tests seed large ones without uploading them)."""
        job = _Job(f"msgbatch_{len(self.jobs) + 1:04d}", requests, self.polls, version)
        job.counts = {"processing": len(requests), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        self.jobs[job.id] = job
        return job

    def listing(self, query: Mapping[str, str]) -> Reply:
        limit = int(query.get("limit", "20"))
        if not 1 <= limit <= 1000:
            return _error(400, "limit: must be between 1 and 1000")
        ids = sorted(self.jobs, reverse=True)  # newest first
        after = query.get("after_id")
        start = ids.index(after) + 1 if after in ids else 0
        page = ids[start:start + limit]
        return Reply.json({"data": [self.record(self.jobs[i]) for i in page], "has_more": start + limit < len(ids),
                           "first_id": page[0] if page else None, "last_id": page[-1] if page else None})

    def record(self, job: _Job) -> dict[str, Any]:
        ended = job.status == "ended"
        return {"id": job.id, "type": "message_batch", "processing_status": job.status,
                "request_counts": dict(job.counts), "created_at": _TIME, "expires_at": "2026-12-02T00:00:00Z",
                "ended_at": _TIME if ended else None, "archived_at": None,
                "cancel_initiated_at": _TIME if job.cancelled else None,
                "results_url": f"{self.origin}{PATH}/{job.id}/results" if ended else None}

    def _advance(self, job: _Job) -> None:
        if job.status == "ended":
            return
        if job.polls_left > 0 and not job.cancelled:
            job.polls_left -= 1
            return
        job.expired = self.expire
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        for custom_id, _ in job.requests:
            counts[self._kind(job, custom_id)] += 1
        job.counts, job.status = counts, "ended"

    def _kind(self, job: _Job, custom_id: str) -> str:
        if job.cancelled:
            return "canceled"
        if job.expired:
            return "expired"
        scripted = self.outcomes.get(custom_id)
        return "succeeded" if scripted is None else scripted

    def _results(self, job: _Job) -> Iterator[bytes]:
        buffer: list[bytes] = []
        size = 0
        for custom_id, params in job.requests:
            line = json.dumps({"custom_id": custom_id, "result": self._result(job, custom_id, params)}).encode()
            buffer.append(line + b"\n")
            size += len(line) + 1
            if size >= _CHUNK_BYTES:
                yield b"".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield b"".join(buffer)

    def _result(self, job: _Job, custom_id: str, params: Any) -> dict[str, Any]:
        kind = self._kind(job, custom_id)
        if kind == "errored":
            return {"type": "errored", "error": error_body(500, "scripted failure", "api_error")}
        if kind != "succeeded":
            return {"type": kind}
        reply = self.chat.messages(params, job.version)
        answer = json.loads(reply.body)
        if reply.status != 200:
            return {"type": "errored", "error": answer}
        return {"type": "succeeded", "message": answer}


def _error(status: int, message: str) -> Reply:
    return Reply.json(error_body(status, message), status, {"request-id": REQUEST_ID})
