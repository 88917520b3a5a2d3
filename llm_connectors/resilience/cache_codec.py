"""JSON for cached answers kept in Redis.

Never pickle: whoever can write to Redis could then run code in every process reading it. An
entry is plain JSON, ``{"v": 1, "kind": ..., "data": ...}``, decoded field by field with type
checks; anything unexpected (another version, a tampered or truncated entry) reads as a miss.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..types import ChatResponse, EmbeddingResponse, ModelInfo, ReasoningBlock, ToolCall, Usage

__all__ = ["MAX_ENTRY_BYTES", "decode", "encode"]

VERSION = 1
MAX_ENTRY_BYTES = 8 << 20  # bigger answers are not shared (and a bigger entry reads as a miss)
_USAGE_FIELDS = ("input_tokens", "output_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens",
                 "reasoning_tokens")


class _Unreadable(ValueError):
    pass


def encode(value: object) -> bytes | None:
    """The entry for a cacheable value, or ``None`` if it cannot be stored as JSON (or is too big)."""
    data: object
    if isinstance(value, ChatResponse):
        kind, data = "chat", _chat(value)
    elif isinstance(value, EmbeddingResponse):
        kind, data = "embedding", {"embeddings": value.embeddings, "model": value.model, "provider": value.provider,
                                   "usage": _usage(value.usage)}
    elif isinstance(value, list) and all(isinstance(m, ModelInfo) for m in value):
        kind, data = "models", [{"id": m.id, "name": m.name, "created": m.created,
                                 "context_length": m.context_length, "raw": dict(m.raw)} for m in value]
    else:
        return None
    try:
        blob = json.dumps({"v": VERSION, "kind": kind, "data": data}, separators=(",", ":"),
                          ensure_ascii=False).encode()
    except (TypeError, ValueError, RecursionError):
        return None
    return blob if len(blob) <= MAX_ENTRY_BYTES else None


def decode(blob: bytes) -> Any:
    """The value of an entry, or ``None`` when it is not one this version wrote."""
    if len(blob) > MAX_ENTRY_BYTES:
        return None
    try:
        entry = json.loads(blob)
        if not isinstance(entry, dict) or entry.get("v") != VERSION:
            return None
        kind, data = entry.get("kind"), entry.get("data")
        if kind == "chat":
            return _read_chat(_dict(data))
        if kind == "embedding":
            data = _dict(data)
            vectors = data.get("embeddings")
            if not isinstance(vectors, list) or not all(
                    isinstance(v, list) and all(_is_number(x) for x in v) for v in vectors):
                raise _Unreadable("embeddings")
            return EmbeddingResponse(embeddings=[[float(x) for x in v] for v in vectors], model=_str(data, "model"),
                                     provider=_str(data, "provider"), usage=_read_usage(data.get("usage")))
        if kind == "models":
            if not isinstance(data, list):
                raise _Unreadable("models")
            return [ModelInfo(id=_str(m, "id"), name=_str(m, "name"), created=_opt_int(m, "created"),
                              context_length=_opt_int(m, "context_length"), raw=_dict(m.get("raw", {})))
                    for m in map(_dict, data)]
    except (ValueError, TypeError, RecursionError, UnicodeDecodeError):
        return None
    return None


def _chat(r: ChatResponse) -> dict[str, Any]:
    return {
        "content": r.content, "finish_reason": r.finish_reason, "usage": _usage(r.usage),
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments, "raw_arguments": c.raw_arguments,
                        "parse_error": c.parse_error} for c in r.tool_calls],
        "provider": r.provider, "model": r.model, "raw": r.raw, "id": r.id, "reasoning": r.reasoning,
        "reasoning_blocks": [{"text": b.text, "signature": b.signature, "redacted_data": b.redacted_data}
                             for b in r.reasoning_blocks],
        "native_finish_reason": r.native_finish_reason,
    }


def _read_chat(d: dict[str, Any]) -> ChatResponse:
    calls = d.get("tool_calls", [])
    blocks = d.get("reasoning_blocks", [])
    if not isinstance(calls, list) or not isinstance(blocks, list):
        raise _Unreadable("lists")
    return ChatResponse(
        content=_str(d, "content"), finish_reason=_opt_str(d, "finish_reason"), usage=_read_usage(d.get("usage")),
        tool_calls=[ToolCall(id=_str(c, "id"), name=_str(c, "name"), arguments=_dict(c.get("arguments", {})),
                             raw_arguments=_opt_str(c, "raw_arguments"), parse_error=_opt_str(c, "parse_error"))
                    for c in map(_dict, calls)],
        provider=_str(d, "provider"), model=_str(d, "model"), raw=d.get("raw"), id=_opt_str(d, "id"),
        reasoning=_str(d, "reasoning"),
        reasoning_blocks=[ReasoningBlock(text=_str(b, "text"), signature=_opt_str(b, "signature"),
                                         redacted_data=_opt_str(b, "redacted_data")) for b in map(_dict, blocks)],
        native_finish_reason=_opt_str(d, "native_finish_reason"))


def _usage(u: Usage) -> dict[str, int | None]:
    return {name: getattr(u, name) for name in _USAGE_FIELDS}


def _read_usage(value: Any) -> Usage:
    d = _dict(value if value is not None else {})
    return Usage(**{name: _opt_int(d, name) for name in _USAGE_FIELDS})


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _Unreadable("object expected")
    return dict(value)


def _str(d: Mapping[str, Any], name: str) -> str:
    value = d.get(name)
    if not isinstance(value, str):
        raise _Unreadable(name)
    return value


def _opt_str(d: Mapping[str, Any], name: str) -> str | None:
    value = d.get(name)
    if value is not None and not isinstance(value, str):
        raise _Unreadable(name)
    return value


def _opt_int(d: Mapping[str, Any], name: str) -> int | None:
    value = d.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _Unreadable(name)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
