"""A fake Anthropic Messages API for :class:`~llm_connectors.testing.FakeServer`.

:class:`ClaudeFake` answers ``POST /v1/messages`` (JSON, or named SSE events when the body
says ``stream: true``) and ``GET /v1/models`` (cursor paging with ``limit`` / ``after_id``)
in Anthropic's wire format (WIRE.md §1), with deterministic content, and
``POST /v1/messages/count_tokens``. Like the real API it refuses requests without credentials or
``anthropic-version``, without ``max_tokens``, with a ``system`` role in ``messages`` or with body
fields Claude does not know, and under ``anthropic-version: 2026-10-21`` also ``temperature`` /
``top_p`` / ``top_k`` and documents in assistant turns, so a translation mistake fails loudly.
Scripted replies are played first, so a test can inject a 529 or a broken stream and then see the
normal answer.

:class:`ClaudeWireKit` is the :class:`~llm_connectors.testing.kit.WireKit` the conformance
suite uses to speak for the ``claude`` connector.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..types import ToolCall
from .kit import Finish, WireKit
from .server import Reply, Request

__all__ = ["ClaudeFake", "ClaudeWireKit", "claude_message_json", "claude_sse_events", "count_tokens_of", "sse_event"]

_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}
# Top-level fields of a Messages request (WIRE.md §1.2); anything else is rejected, as the API does.
_BODY_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "stop_sequences", "temperature", "top_p", "top_k", "stream",
    "metadata", "service_tier", "inference_geo", "container", "thinking", "tools", "tool_choice",
    "output_config", "cache_control", "speed", "diagnostics", "user_profile_id", "workspace_id",
})
# What count_tokens takes (anthropic 2.17.0 MessageCountTokensParams).
_COUNT_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                           "cache_control", "speed", "user_profile_id", "workspace_id"})
#: The API version that removed sampling options and documents in assistant turns.
CURRENT_VERSION = "2026-10-21"
REQUEST_ID = "req_011CFakeClaudeRequest"


def sse_event(obj: Mapping[str, Any]) -> bytes:
    """One named event, as the API frames it: ``event: <type>`` then ``data: <json>``."""
    return f"event: {obj['type']}\ndata: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()


def error_body(status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    """Anthropic's error envelope (WIRE.md §1.7); unlisted 4xx use ``invalid_request_error``."""
    default = "invalid_request_error" if status < 500 else "api_error"
    return {"type": "error", "error": {"type": error_type or _ERROR_TYPES.get(status, default),
                                       "message": message}, "request_id": REQUEST_ID}


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
            "output_tokens": output_tokens}


def _has_text_block(text: str, tool_calls: Sequence[ToolCall]) -> bool:
    # The API sends no text block for a turn that only calls tools.
    return bool(text) or not tool_calls


def claude_message_json(text: str, *, model: str = "claude-fake-1", tool_calls: Sequence[ToolCall] = (),
                        stop_reason: str = "end_turn", input_tokens: int = 7, output_tokens: int = 3,
                        message_id: str = "msg_fake") -> dict[str, Any]:
    """A complete non-streaming Message."""
    content: list[dict[str, Any]] = []
    if _has_text_block(text, tool_calls):
        content.append({"type": "text", "text": text})
    content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)}
                for c in tool_calls]
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": None, "usage": _usage(input_tokens, output_tokens)}


def _message_start(model: str, message_id: str, input_tokens: int) -> bytes:
    return sse_event({"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": _usage(input_tokens, 1)}})


def _text_block_events(index: int, deltas: Sequence[str]) -> list[bytes]:
    events = [sse_event({"type": "content_block_start", "index": index,
                         "content_block": {"type": "text", "text": ""}})]
    events += [sse_event({"type": "content_block_delta", "index": index,
                          "delta": {"type": "text_delta", "text": d}}) for d in deltas]
    return events


def _tool_block_events(index: int, call: ToolCall) -> list[bytes]:
    # The input arrives only as partial_json fragments, the first one usually "" (WIRE.md §1.4).
    text = json.dumps(dict(call.arguments), separators=(",", ":")) if call.arguments else ""
    half = len(text) // 2
    events = [sse_event({"type": "content_block_start", "index": index, "content_block": {
        "type": "tool_use", "id": call.id, "name": call.name, "input": {}}})]
    for fragment in ("", text[:half], text[half:]):
        events.append(sse_event({"type": "content_block_delta", "index": index,
                                 "delta": {"type": "input_json_delta", "partial_json": fragment}}))
    events.append(sse_event({"type": "content_block_stop", "index": index}))
    return events


def claude_sse_events(deltas: Sequence[str], *, model: str = "claude-fake-1",
                      tool_calls: Sequence[ToolCall] = (), stop_reason: str = "end_turn",
                      input_tokens: int = 7, output_tokens: int = 3, message_id: str = "msg_fake",
                      end: bool = True) -> list[bytes]:
    """The events of a streamed answer whose text is ``"".join(deltas)``, then the tool calls.

    With ``end=False`` the stream stops after the text deltas (for in-band error tests).
    """
    events = [_message_start(model, message_id, input_tokens), sse_event({"type": "ping"})]
    index = 0
    if _has_text_block("".join(deltas), tool_calls):
        events += _text_block_events(index, deltas)
        if not end:
            return events
        events.append(sse_event({"type": "content_block_stop", "index": index}))
        index += 1
    for call in tool_calls:
        events += _tool_block_events(index, call)
        index += 1
    events.append(sse_event({"type": "message_delta",
                             "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                             "usage": {"output_tokens": output_tokens}}))
    events.append(sse_event({"type": "message_stop"}))
    return events


def _model_record(model_id: str, retires_at: str | None = None) -> dict[str, Any]:
    # anthropic 2.x ModelInfo: a deprecated model carries its deprecation and retirement times.
    return {"type": "model", "id": model_id, "display_name": model_id.replace("-", " ").title(),
            "created_at": "2025-01-01T00:00:00Z", "lifecycle": "deprecated" if retires_at else "active",
            "deprecated_at": "2026-10-01T00:00:00Z" if retires_at else None, "retires_at": retires_at}


class ClaudeFake:
    """Deterministic Anthropic-wire handler.

    Attributes:
        text: The answer to every chat; streamed word by word.
        tool_calls: Tool calls appended to every answer (stop reason ``tool_use``).
        models: Ids listed by ``/v1/models``, in pages of at most ``page_size``.
        retiring: Model id -> RFC 3339 retirement time, for models listed as deprecated.
        replies: Scripted replies, used (and removed) before the default behaviour.
    """

    def __init__(self, text: str = "Hello from the fake Claude.", *, tool_calls: Sequence[ToolCall] = (),
                 models: Sequence[str] = ("claude-fake-1", "claude-fake-2", "claude-fake-3"),
                 page_size: int = 2) -> None:
        self.text = text
        self.tool_calls = list(tool_calls)
        self.models = list(models)
        self.page_size = page_size
        self.retiring: dict[str, str] = {}
        self.replies: deque[Reply] = deque()

    def __call__(self, request: Request) -> Reply:
        if self.replies:
            return self.replies.popleft()
        refused = self.check_headers(request)
        if refused is not None:
            return refused
        version = request.headers.get("anthropic-version", "")
        if request.path == "/v1/messages" and request.method == "POST":
            return self.messages(request.json(), version)
        if request.path == "/v1/messages/count_tokens" and request.method == "POST":
            return self.count_tokens(request.json(), version)
        if request.path == "/v1/models" and request.method == "GET":
            return self.models_page(request.query)
        return Reply.json(error_body(404, f"Not found: {request.method} {request.path}"), 404,
                          {"request-id": REQUEST_ID})

    def check_headers(self, request: Request) -> Reply | None:
        """The API's own refusals: no credentials (401), no ``anthropic-version`` (400)."""
        headers = request.headers
        if not headers.get("x-api-key") and not headers.get("authorization", "").startswith("Bearer "):
            return Reply.json(error_body(401, "x-api-key header is required"), 401,
                              {"request-id": REQUEST_ID})
        if not headers.get("anthropic-version"):
            return Reply.json(error_body(400, "anthropic-version: header is required"), 400,
                              {"request-id": REQUEST_ID})
        return None

    def words(self) -> list[str]:
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def messages(self, body: Any, version: str = CURRENT_VERSION) -> Reply:
        problem = _body_problem(body, _BODY_FIELDS, version)
        if problem:
            return Reply.json(error_body(400, problem), 400, {"request-id": REQUEST_ID})
        model = body["model"]
        stop = "tool_use" if self.tool_calls else "end_turn"
        output = max(1, len(self.text.split()))
        if body.get("stream"):
            return Reply.sse(claude_sse_events(self.words(), model=model, tool_calls=self.tool_calls,
                                               stop_reason=stop, output_tokens=output),
                             headers={"request-id": REQUEST_ID})
        return Reply.json(claude_message_json(self.text, model=model, tool_calls=self.tool_calls,
                                              stop_reason=stop, output_tokens=output),
                          headers={"request-id": REQUEST_ID})

    def count_tokens(self, body: Any, version: str = CURRENT_VERSION) -> Reply:
        """A deterministic count: one token per four characters of the JSON body, at least one."""
        problem = _body_problem(body, _COUNT_FIELDS, version, counting=True)
        if problem:
            return Reply.json(error_body(400, problem), 400, {"request-id": REQUEST_ID})
        return Reply.json({"input_tokens": count_tokens_of(body)}, headers={"request-id": REQUEST_ID})

    def models_page(self, query: Mapping[str, str]) -> Reply:
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return Reply.json(error_body(400, "limit: must be between 1 and 1000"), 400)
        after = query.get("after_id")
        start = self.models.index(after) + 1 if after in self.models else 0
        size = min(limit, self.page_size)
        page = self.models[start:start + size]
        return Reply.json({"data": [_model_record(m, self.retiring.get(m)) for m in page],
                           "has_more": start + size < len(self.models),
                           "first_id": page[0] if page else None, "last_id": page[-1] if page else None})


def count_tokens_of(body: Mapping[str, Any]) -> int:
    """The fake's token count for a count_tokens body (tests compute the expected value with it)."""
    return max(1, len(json.dumps(body, separators=(",", ":"), sort_keys=True)) // 4)


def _body_problem(body: Any, fields: frozenset[str], version: str, *, counting: bool = False) -> str | None:
    """What the real API would say about a malformed Messages body, or ``None``."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    unknown = sorted(set(body) - fields)
    if unknown:
        return f"{unknown[0]}: Extra inputs are not permitted"
    if version == CURRENT_VERSION:
        removed = sorted({"temperature", "top_p", "top_k"} & set(body))
        if removed:
            return f"{removed[0]}: Extra inputs are not permitted (removed in API version {CURRENT_VERSION})"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not counting and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        if version == CURRENT_VERSION and message["role"] == "assistant" and isinstance(content, list) and any(
                isinstance(block, dict) and block.get("type") == "document" for block in content):
            return f"messages.{i}.content: document blocks are not accepted in assistant messages"
    return None


class ClaudeWireKit(WireKit):
    """Anthropic's wire format (WIRE.md §1) for the conformance suite."""

    provider_id = "claude"
    connector_path = "llm_connectors.connectors.claude:ClaudeConnector"
    model = "claude-fake-1"
    chat_path = "/v1/messages"

    def chat_reply(self, text: str, *, tool_calls: Sequence[ToolCall] = (), input_tokens: int = 7,
                   output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        body = claude_message_json(text, model=self.model, tool_calls=tool_calls,
                                   stop_reason=_STOP_REASON[finish], input_tokens=input_tokens,
                                   output_tokens=output_tokens)
        return Reply.json(body, headers={"request-id": REQUEST_ID})

    def stream_reply(self, deltas: Sequence[str], *, tool_calls: Sequence[ToolCall] = (),
                     input_tokens: int = 7, output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.sse(claude_sse_events(deltas, model=self.model, tool_calls=tool_calls,
                                           stop_reason=_STOP_REASON[finish], input_tokens=input_tokens,
                                           output_tokens=output_tokens), headers={"request-id": REQUEST_ID})

    def error_reply(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        return Reply.json(error_body(status, message), status, {"request-id": REQUEST_ID, **(headers or {})})

    def stream_error_reply(self, deltas: Sequence[str], *, kind: Literal["overloaded", "api"] = "overloaded"
                           ) -> Reply:
        events = claude_sse_events(deltas, model=self.model, end=False)
        error = {"type": "overloaded_error", "message": "Overloaded"} if kind == "overloaded" \
            else {"type": "api_error", "message": "Internal server error"}
        events.append(sse_event({"type": "error", "error": error}))
        return Reply.sse(events, headers={"request-id": REQUEST_ID})

    def models_reply(self, ids: Sequence[str]) -> Reply:
        return Reply.json({"data": [_model_record(i) for i in ids], "has_more": False,
                           "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None})
