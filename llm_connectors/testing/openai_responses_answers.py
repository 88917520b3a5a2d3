"""OpenAI Responses API answers as a server sends them: a response object and its event stream.

The shapes follow the API reference and openai 3.63.0 ``types/responses`` (``Response``,
``ResponseStreamEvent``); ``tests/providers/test_openai_responses_spec.py`` validates them against
the OpenAPI document. Used by :class:`~llm_connectors.testing.openai_wire.OpenAIFake` (which answers
``/responses``) and by :class:`~llm_connectors.testing.openai_responses_wire.OpenAIResponsesWireKit`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..types import ToolCall
from .kit import Finish

__all__ = ["responses_json", "responses_sse_events", "sse_event"]


def sse_event(obj: Mapping[str, Any]) -> bytes:
    """One Responses event: ``event: <type>`` and its JSON."""
    return f"event: {obj['type']}\ndata: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()


def _usage(input_tokens: int, output_tokens: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens}


def _message(text: str) -> dict[str, Any]:
    return {"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def _call(call: ToolCall, index: int) -> dict[str, Any]:
    return {"type": "function_call", "id": f"fc_fake{index}", "call_id": call.id, "name": call.name,
            "arguments": call.arguments_json(), "status": "completed"}


def responses_json(text: str, *, model: str = "fake-model", tool_calls: Sequence[ToolCall] = (),
                   finish: Finish = "stop", input_tokens: int = 7, output_tokens: int = 3,
                   output: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A complete response; ``output`` replaces the message and calls built from ``text`` and ``tool_calls``."""
    items = list(output) if output is not None else \
        ([_message(text)] if text or not tool_calls else []) + [_call(c, i) for i, c in enumerate(tool_calls)]
    incomplete = finish == "length"
    return {"id": "resp_fake", "object": "response", "created_at": 1_700_000_000, "model": model,
            "status": "incomplete" if incomplete else "completed", "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": None, "metadata": {}, "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0,
            "tool_choice": "auto", "tools": [], "output": items, "usage": _usage(input_tokens, output_tokens)}


def responses_sse_events(deltas: Iterable[str], *, model: str = "fake-model", tool_calls: Sequence[ToolCall] = (),
                         finish: Finish = "stop", input_tokens: int = 7, output_tokens: int = 3,
                         end: bool = True) -> list[bytes]:
    """The events of a streamed response whose text is ``"".join(deltas)``, then its tool calls."""
    deltas = list(deltas)
    text = "".join(deltas)
    final = responses_json(text, model=model, tool_calls=tool_calls, finish=finish, input_tokens=input_tokens,
                           output_tokens=output_tokens)
    started = {k: v for k, v in final.items() if k != "usage"} | {"status": "in_progress", "output": [],
                                                                  "incomplete_details": None}
    seq = iter(range(1_000_000))
    events: list[dict[str, Any]] = [{"type": "response.created", "response": started},
                                    {"type": "response.in_progress", "response": started}]
    index = 0
    if text or not tool_calls:
        message = _message(text)
        events.append({"type": "response.output_item.added", "output_index": 0,
                       "item": {**message, "status": "in_progress", "content": []}})
        events += [{"type": "response.output_text.delta", "item_id": "msg_fake", "output_index": 0,
                    "content_index": 0, "delta": d, "logprobs": []} for d in deltas]
        events.append({"type": "response.output_text.done", "item_id": "msg_fake", "output_index": 0,
                       "content_index": 0, "text": text, "logprobs": []})
        events.append({"type": "response.output_item.done", "output_index": 0, "item": message})
        index = 1
    for number, call in enumerate(tool_calls):
        item = _call(call, number)
        arguments = item["arguments"]
        half = len(arguments) // 2
        events.append({"type": "response.output_item.added", "output_index": index,
                       "item": {**item, "arguments": "", "status": "in_progress"}})
        events += [{"type": "response.function_call_arguments.delta", "item_id": item["id"], "output_index": index,
                    "delta": piece} for piece in (arguments[:half], arguments[half:])]
        events.append({"type": "response.function_call_arguments.done", "item_id": item["id"],
                       "output_index": index, "name": call.name, "arguments": arguments})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        index += 1
    if end:
        kind = "response.incomplete" if finish == "length" else "response.completed"
        events.append({"type": kind, "response": final})
    return [sse_event({**event, "sequence_number": next(seq)}) for event in events]
