"""OpenAI's Responses API (``POST /v1/responses``) for the conformance suite: a wire kit.

:class:`OpenAIResponsesWireKit` runs the shipped conformance suite over an
``OpenAIConnector(api="responses")``; the answers it scripts come from
:mod:`~llm_connectors.testing.openai_responses_answers`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..base import BaseConnector
from ..types import ToolCall
from .kit import Finish
from .openai_responses_answers import responses_json, responses_sse_events, sse_event
from .openai_wire import OpenAIWireKit
from .server import Reply

__all__ = ["OpenAIResponsesWireKit", "responses_json", "responses_sse_events", "sse_event"]


class OpenAIResponsesWireKit(OpenAIWireKit):
    """OpenAI's Responses API for the conformance suite (an ``OpenAIConnector`` with ``api="responses"``);
    embeddings and the model list are the Chat Completions kit's (one API serves them)."""

    provider_id = "openai"
    connector_path = "llm_connectors.connectors.openai:OpenAIConnector"
    base_path = "/v1"
    chat_path = "/v1/responses"

    def make_connector(self, base_url: str, **kwargs: Any) -> BaseConnector:
        kwargs.setdefault("api", "responses")
        return super().make_connector(base_url, **kwargs)

    def chat_reply(self, text: str, *, tool_calls: Sequence[ToolCall] = (), input_tokens: int = 7,
                   output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.json(responses_json(text, model=self.model, tool_calls=tool_calls, finish=finish,
                                         input_tokens=input_tokens, output_tokens=output_tokens))

    def stream_reply(self, deltas: Sequence[str], *, tool_calls: Sequence[ToolCall] = (),
                     input_tokens: int = 7, output_tokens: int = 3, finish: Finish = "stop") -> Reply:
        return Reply.sse(responses_sse_events(deltas, model=self.model, tool_calls=tool_calls, finish=finish,
                                              input_tokens=input_tokens, output_tokens=output_tokens))

    def error_reply(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> Reply:
        kind = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                404: "invalid_request_error", 429: "requests"}.get(status, "server_error")
        return Reply.json({"error": {"message": message, "type": kind, "param": None, "code": None}},
                          status, headers)

    def stream_error_reply(self, deltas: Sequence[str], *, kind: Literal["overloaded", "api"] = "overloaded"
                           ) -> Reply:
        events = responses_sse_events(deltas, model=self.model, end=False)
        if deltas:  # stop after the text deltas: drop output_text.done and output_item.done
            events = events[:-2]
        if kind == "overloaded":  # an `error` event
            events.append(sse_event({"type": "error", "code": "overloaded_error", "message": "The server is overloaded",
                                     "param": None, "sequence_number": 99}))
        else:  # the response itself failed
            failed = {k: v for k, v in responses_json("", model=self.model).items() if k != "usage"} | {
                "status": "failed", "output": [], "error": {"code": "server_error", "message": "internal error"}}
            events.append(sse_event({"type": "response.failed", "response": failed, "sequence_number": 99}))
        return Reply.sse(events)
