"""Generated answers, each rendered both ways: as the provider's stream and as its non-streaming body.

An :class:`Answer` is neutral (text, reasoning, refusal and tool calls in pieces, the provider's
finish reason, usage); :func:`render` writes it in one provider's wire format, as the API sends it
(OpenAI and Claude split a tool call's argument text into fragments; Mistral sends each call whole,
all at ``index`` 0; Ollama one line per call with arguments as an object). :func:`answers` draws
them from a seeded ``random.Random``, so a failure names its seed and is replayed exactly.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROVIDERS", "Answer", "Call", "answers", "reads", "render"]

PROVIDERS = ("openai", "claude", "mistral", "ollama")
#: Characters that have broken stream parsers: multi-byte UTF-8 (split across reads), line
#: separators other than CR/LF (``str.splitlines`` splits on them), JSON and SSE syntax, a BOM.
TRICKY = ["a", "b", " ", "é", "中", "😀", "\n", "\r", "\r\n", "\t", '"', "\\", "\u2028", "\u0085", "\x00",
          "data: ", "[DONE]", "\ufeff", "{", "}", "event: ping"]
FINISH = {"openai": ["stop", "length", "content_filter"], "claude": ["end_turn", "max_tokens", "stop_sequence"],
          "mistral": ["stop", "length"], "ollama": ["stop", "length"]}
CALL_FINISH = {"openai": "tool_calls", "claude": "tool_use", "mistral": "tool_calls", "ollama": "stop"}


@dataclass
class Call:
    id: str
    name: str
    arguments: dict[str, Any]
    pieces: list[str]  # the arguments' JSON text, split as a stream sends it


@dataclass
class Answer:
    seed: int
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    finish: str = "stop"
    usage: tuple[int, int] = (0, 0)


def _text(rng: random.Random, longest: int = 12) -> str:
    return "".join(rng.choice(TRICKY) for _ in range(rng.randint(1, longest)))


def _split(rng: random.Random, text: str, most: int = 5) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(0, most)))) if len(text) > 1 else []
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 2 else 4)
    if kind == 0:
        return _text(rng)
    if kind == 1:
        return rng.randint(-10**6, 10**6)
    if kind == 2:
        return rng.choice([True, False, None, 1.5])
    if kind == 3:
        return ""
    if kind in (4, 5):
        return {_text(rng, 4): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def answers(provider: str, count: int, seed: int) -> list[Answer]:
    """``count`` answers for ``provider``, the n-th drawn from ``seed + n``."""
    out = []
    for n in range(count):
        rng = random.Random(seed + n)
        answer = Answer(seed=seed + n, usage=(rng.randint(1, 5000), rng.randint(1, 5000)))
        shape = rng.randrange(4)  # text only, tools only, both, refusal / reasoning
        if shape != 1:
            answer.text = [_text(rng) for _ in range(rng.randint(1, 6))]
        if shape in (1, 2):
            for i in range(rng.randint(1, 3)):
                arguments = {_text(rng, 4): _value(rng) for _ in range(rng.randint(0, 4))}
                wire = json.dumps(arguments, ensure_ascii=False, separators=rng.choice([(",", ":"), (", ", ": ")]))
                call_id = f"call{seed + n:05d}x{i}" if provider != "mistral" else f"{seed + n:07d}c{i}"
                answer.calls.append(Call(call_id, rng.choice(["get_weather", "write_file", "search"]), arguments,
                                         _split(rng, wire, 8)))
        if shape == 3:
            if provider == "openai":
                answer.text = []
                answer.refusal = [_text(rng) for _ in range(rng.randint(1, 4))]
            else:
                answer.reasoning = [_text(rng) for _ in range(rng.randint(1, 4))]
        answer.finish = CALL_FINISH[provider] if answer.calls else rng.choice(FINISH[provider])
        if provider == "openai" and answer.refusal:
            answer.finish = "stop"  # what the API sends with a refusal
        out.append(answer)
    return out


def reads(rng: random.Random, size: int) -> list[int] | None:
    """How the bytes arrive: whole, one byte per read, or cut at random places."""
    how = rng.randrange(3)
    if how == 0:
        return None
    if how == 1:
        return [1] * size
    return [rng.randint(1, 64) for _ in range(size // 8 + 1)]


# -- the wire formats --------------------------------------------------------------------------------

def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)  # raw UTF-8 (and raw U+2028) on the wire, as the APIs send


def _sse(events: list[Any], named: bool = False) -> bytes:
    out = []
    for event in events:
        if isinstance(event, str):
            out.append(f"data: {event}\n\n")
        elif named:
            out.append(f"event: {event['type']}\ndata: {_dumps(event)}\n\n")
        else:
            out.append(f"data: {_dumps(event)}\n\n")
    return "".join(out).encode()


def _openai(a: Answer, rng: random.Random) -> tuple[bytes, bytes]:
    head = {"id": f"chatcmpl-{a.seed}", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    usage = {"prompt_tokens": a.usage[0], "completion_tokens": a.usage[1], "total_tokens": sum(a.usage)}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    events: list[Any] = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in a.text]
    events += [chunk({"refusal": piece}) for piece in a.refusal]
    for i, call in enumerate(a.calls):
        first, *rest = call.pieces
        events.append(chunk({"tool_calls": [{"index": i, "id": call.id, "type": "function",
                                             "function": {"name": call.name, "arguments": first}}]}))
        events += [chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]}) for p in rest]
    events += [chunk({}, a.finish), {**head, "choices": [], "usage": usage}, "[DONE]"]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(a.text) if a.text or not a.refusal else None,
                               "refusal": "".join(a.refusal) or None}
    if a.calls:
        message["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": "".join(c.pieces)}} for c in a.calls]
    body = {"id": f"chatcmpl-{a.seed}", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": a.finish, "logprobs": None}],
            "usage": usage}
    return _sse(events), _dumps(body).encode()


def _claude(a: Answer, rng: random.Random) -> tuple[bytes, bytes]:
    message = {"id": f"msg_{a.seed}", "type": "message", "role": "assistant", "model": "m", "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": a.usage[0], "output_tokens": 1}}
    events: list[Any] = [{"type": "message_start", "message": message}, {"type": "ping"}]
    blocks: list[dict[str, Any]] = []
    if a.reasoning:
        blocks.append({"type": "thinking", "thinking": "".join(a.reasoning), "signature": f"sig{a.seed}"})
        index = len(blocks) - 1
        events.append({"type": "content_block_start", "index": index,
                       "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
        events += [{"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": p}}
                   for p in a.reasoning]
        events += [{"type": "content_block_delta", "index": index,
                    "delta": {"type": "signature_delta", "signature": f"sig{a.seed}"}},
                   {"type": "content_block_stop", "index": index}]
    if a.text:
        blocks.append({"type": "text", "text": "".join(a.text)})
        index = len(blocks) - 1
        events.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
        events += [{"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}
                   for p in a.text]
        events.append({"type": "content_block_stop", "index": index})
    for call in a.calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
        index = len(blocks) - 1
        events.append({"type": "content_block_start", "index": index,
                       "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}})
        events += [{"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": p}} for p in call.pieces]
        events.append({"type": "content_block_stop", "index": index})
    events += [{"type": "message_delta", "delta": {"stop_reason": a.finish, "stop_sequence": None},
                "usage": {"output_tokens": a.usage[1]}}, {"type": "message_stop"}]
    body = {**message, "content": blocks, "stop_reason": a.finish,
            "usage": {"input_tokens": a.usage[0], "output_tokens": a.usage[1]}}
    return _sse(events, named=True), _dumps(body).encode()


def _mistral(a: Answer, rng: random.Random) -> tuple[bytes, bytes]:
    head = {"id": f"m{a.seed}", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    usage = {"prompt_tokens": a.usage[0], "completion_tokens": a.usage[1], "total_tokens": sum(a.usage)}

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}

    def thinking(text: str) -> dict[str, Any]:
        return {"type": "thinking", "thinking": [{"type": "text", "text": text}]}

    events: list[Any] = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": [thinking(p)]}) for p in a.reasoning]
    events += [chunk({"content": p}) for p in a.text]
    same_index = rng.random() < 0.7  # Mistral numbers every call 0
    wire_calls = [{"id": c.id, "type": "function", "index": 0 if same_index else i,
                   "function": {"name": c.name, "arguments": "".join(c.pieces)}} for i, c in enumerate(a.calls)]
    if wire_calls:
        events.append(chunk({"tool_calls": wire_calls}))
    events += [chunk({}, a.finish, usage=usage), "[DONE]"]
    content: Any = "".join(a.text)
    if a.reasoning:
        content = [thinking("".join(a.reasoning)), {"type": "text", "text": "".join(a.text)}]
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if wire_calls:
        message["tool_calls"] = wire_calls
    body = {"id": f"m{a.seed}", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": a.finish}], "usage": usage}
    return _sse(events), _dumps(body).encode()


def _ollama(a: Answer, rng: random.Random) -> tuple[bytes, bytes]:
    head = {"model": "m", "created_at": "2025-01-01T00:00:00Z"}
    lines = [{**head, "message": {"role": "assistant", "content": "", "thinking": p}, "done": False}
             for p in a.reasoning]
    lines += [{**head, "message": {"role": "assistant", "content": p}, "done": False} for p in a.text]
    calls = [{"function": {"name": c.name, "arguments": c.arguments}} for c in a.calls]
    lines += [{**head, "message": {"role": "assistant", "content": "", "tool_calls": [call]}, "done": False}
              for call in calls]
    counts = {"prompt_eval_count": a.usage[0], "eval_count": a.usage[1]}
    lines.append({**head, "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": a.finish,
                  **counts})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(a.text)}
    if a.reasoning:
        message["thinking"] = "".join(a.reasoning)
    if calls:
        message["tool_calls"] = calls
    body = {**head, "message": message, "done": True, "done_reason": a.finish, **counts}
    return "".join(_dumps(line) + "\n" for line in lines).encode(), _dumps(body).encode()


_RENDER = {"openai": _openai, "claude": _claude, "mistral": _mistral, "ollama": _ollama}


def render(provider: str, answer: Answer) -> tuple[bytes, bytes]:
    """(stream bytes, non-streaming body) of ``answer`` in ``provider``'s wire format."""
    return _RENDER[provider](answer, random.Random(answer.seed))
