"""``llm-connectors batch``: provider batch jobs from a shell.

    llm-connectors batch submit items.jsonl -p claude [--wait]   one item per line: custom_id, messages, options
    llm-connectors batch status ID -p claude [--wait]            status and counts (waiting shows progress)
    llm-connectors batch results ID -p claude                    one JSON line per item
    llm-connectors batch cancel ID -p claude
    llm-connectors batch list -p claude
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import IO, Any

from ..batches import BatchJob
from ..errors import LLMConnectorError
from .arguments import check_provider, chosen_model
from .connection import connected
from .errors import EXIT_OK, UsageError
from .output import Progress, dump

__all__ = ["batch"]


async def batch(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    check_provider(args.provider)
    if args.provider == "auto" and not args.base_url:
        raise UsageError("batch needs -p PROVIDER (claude, openai or mistral)")
    if args.action in ("submit", "status", "results", "cancel") and not args.target:
        raise UsageError(f"batch {args.action} needs {'a JSONL file' if args.action == 'submit' else 'a job id'}")
    items = _read_items(args.target, chosen_model(args)) if args.action == "submit" else []
    async with connected(args) as conn:
        if args.action == "list":
            async for job in conn.list_batches():
                _status(job, out, args.json)
            return EXIT_OK
        job = await (conn.submit_batch(items) if args.action == "submit" else conn.get_batch(args.target))
        if args.action == "cancel":
            await job.cancel()
        elif args.action == "results":
            async for custom_id, result in job.results():
                out.write(json.dumps(_result_line(custom_id, result), ensure_ascii=False) + "\n")
            return EXIT_OK
        elif args.wait:
            await _wait(job, args.poll, err)
        _status(job, out, args.json)
    return EXIT_OK


def _read_items(path: str, model: str | None) -> list[dict[str, Any]]:
    items = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise UsageError(f"{path} line {number} is not JSON") from None
        if not isinstance(item, dict):
            raise UsageError(f"{path} line {number} must be a JSON object with custom_id and messages")
        if model and "model" not in item:
            item["model"] = model
        items.append(item)
    return items


async def _wait(job: BatchJob, poll: float, err: IO[str]) -> None:
    progress = Progress(job.counts.total, f"batch {job.id}", err)

    def moved(current: BatchJob) -> None:
        counts = current.counts
        progress.total = max(counts.total, 1)
        progress.advance(counts.succeeded + counts.errored + counts.cancelled + counts.expired - progress.done)

    await job.wait(poll_interval=poll, on_progress=moved)
    progress.close()


def _status(job: BatchJob, out: IO[str], as_json: bool) -> None:
    counts = job.counts
    if as_json:
        dump({"id": job.id, "provider": job.provider, "status": job.status, "counts": {
            "total": counts.total, "succeeded": counts.succeeded, "errored": counts.errored,
            "processing": counts.processing, "cancelled": counts.cancelled, "expired": counts.expired}}, out,
             compact=True)
    else:
        out.write(f"{job.id}\t{job.status}\t{counts.succeeded + counts.errored}/{counts.total} done"
                  f"{f', {counts.errored} errored' if counts.errored else ''}\n")


def _result_line(custom_id: str, result: Any) -> dict[str, Any]:
    if isinstance(result, LLMConnectorError):
        return {"custom_id": custom_id, "error": {"type": type(result).__name__, "message": result.message,
                                                   "code": result.code}}
    usage = result.usage
    return {"custom_id": custom_id, "content": result.content, "model": result.model,
            "finish_reason": result.finish_reason,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}}
