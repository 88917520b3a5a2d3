"""The OpenAI Chat Completions dialect, shared by OpenAI, Mistral and any compatible server.

A compatible service is this class plus a :class:`ServiceDefinition` and, where its dialect
differs, a few class attributes (``max_tokens_field``, ``seed_field``, ``send_stream_options``)
or small overrides. Wire facts: WIRE.md §2 (OpenAI) and §5 (normalisation).
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from ..base import BaseConnector
from ..definition import AuthSpec, Capability, ServiceDefinition, common_parameters
from ..errors import ProtocolError
from ..requests import ChatRequest, EmbeddingRequest, HTTPRequest
from ..stream import StreamDecoder
from ..types import ChatResponse, EmbeddingResponse, Message, MessageInput, ModelInfo, ReasoningBlock, ToolCall, Usage
from ..wire.messages import tool_result_text
from ..wire.shapes import conform
from .openai_parse import (
    ChatCompletion,
    EmbeddingList,
    ModelList,
    OpenAIStreamDecoder,
    check_one_choice,
    first_choice,
    normalize_finish_reason,
    parse_openai_usage,
    reasoning_field,
    split_content,
)

__all__ = ["OpenAICompatibleConnector"]

# Options the dialect maps itself; any other declared parameter is sent under its own name.
_MAPPED = frozenset({"temperature", "top_p", "max_tokens", "stop", "seed", "tools", "tool_choice",
                     "response_format"})


class OpenAICompatibleConnector(BaseConnector):
    """Base for every service that speaks OpenAI's Chat Completions dialect.

    Subclasses set :attr:`definition` and adjust the dialect with the class attributes below.
    """

    definition: ClassVar[ServiceDefinition] = ServiceDefinition(
        id="openai_compatible",
        name="OpenAI-compatible server",
        base_url="http://127.0.0.1:8000/v1",
        auth=AuthSpec(kind="bearer", required=False),
        capabilities=frozenset({Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.VISION,
                                Capability.JSON_MODE, Capability.JSON_SCHEMA, Capability.EMBEDDINGS,
                                Capability.LIST_MODELS}),
        parameters=common_parameters(temperature_max=2.0),
    )
    chat_path: ClassVar[str] = "/chat/completions"
    embeddings_path: ClassVar[str] = "/embeddings"
    models_path: ClassVar[str] = "/models"
    #: ``max_completion_tokens`` for OpenAI itself; most compatible servers want ``max_tokens``.
    max_tokens_field: ClassVar[str] = "max_tokens"
    seed_field: ClassVar[str] = "seed"
    #: Ask for the usage chunk with ``stream_options.include_usage`` (servers that reject it: False).
    send_stream_options: ClassVar[bool] = True
    #: Send ``name`` on ``tool`` messages (OpenAI's spec has no such field there).
    tool_message_name: ClassVar[bool] = False
    #: ``base64`` halves the bytes on the wire; ``None`` sends no ``encoding_format`` (floats).
    embedding_encoding: ClassVar[Literal["base64", "float"] | None] = None

    # -- chat ---------------------------------------------------------------------------------

    def prepare_chat(self, model: str | None, messages: Iterable[MessageInput] | str,
                     options: Mapping[str, Any], *, stream: bool) -> ChatRequest:
        """Validate as the base does; ``n`` > 1 (through ``extra``) is refused: a call returns one answer."""
        request = super().prepare_chat(model, messages, options, stream=stream)
        check_one_choice(request.extra, self.provider)
        return request

    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [self.wire_message(m) for m in request.messages],
        }
        params = request.params
        if params:
            self.apply_params(body, params)
        if request.stream:
            body["stream"] = True
            if self.send_stream_options:
                body["stream_options"] = {"include_usage": True}
        return HTTPRequest("POST", self.chat_path, json=body)

    def apply_params(self, body: dict[str, Any], params: Mapping[str, Any]) -> None:
        """Map the normalised options onto the dialect's field names."""
        for name, value in params.items():
            if name == "max_tokens":
                body[self.max_tokens_field] = value
            elif name == "seed":
                body[self.seed_field] = value
            elif name == "tool_choice":
                body["tool_choice"] = self.wire_tool_choice(value)
            elif name == "tools":
                # `cache_control` is the neutral caching marker; this dialect has no such field.
                body["tools"] = [{k: v for k, v in tool.items() if k != "cache_control"} for tool in value]
            else:  # temperature, top_p, stop, response_format and declared extras
                body[name] = value

    def wire_tool_choice(self, choice: str | dict[str, Any]) -> Any:
        return choice

    def wire_message(self, message: Message) -> dict[str, Any]:
        """One message in the dialect's shape."""
        role = message.role
        if role == "tool":
            out: dict[str, Any] = {"role": "tool",
                                   "tool_call_id": self.wire_tool_call_id(message.tool_call_id or ""),
                                   "content": tool_result_text(message.content)}
            if message.name and self.tool_message_name:
                out["name"] = message.name
            return out
        content = message.content
        out = {"role": role, "content": self.wire_content(content) if isinstance(content, list) else content}
        if message.name:
            out["name"] = message.name
        if message.tool_calls:
            out["tool_calls"] = [
                {"id": self.wire_tool_call_id(c.id), "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments_json()}}
                for c in message.tool_calls
            ]
        elif role == "assistant" and content is None:
            out["content"] = ""
        return out

    def wire_content(self, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Normalised parts (text, image_url, file) in the dialect's shape.

        ``cache_control`` markers are dropped: the dialect caches prompt prefixes by itself and
        the servers reject (or ignore) the unknown key.
        """
        out = []
        for part in parts:
            if part["type"] == "file":
                out.append(self.wire_file(part["file"]))
            else:
                out.append({k: v for k, v in part.items() if k != "cache_control"})
        return out

    def wire_file(self, file: Mapping[str, Any]) -> dict[str, Any]:
        """A document part (``file_data`` / ``file_id``, optional ``filename``), in OpenAI's shape.

        Only connectors that declare :attr:`Capability.DOCUMENTS` get here (the base refuses
        documents for the others before any I/O); ``url`` is refused by them beforehand.
        """
        return {"type": "file", "file": {k: v for k, v in file.items() if k in ("file_data", "file_id", "filename")}}

    def wire_tool_call_id(self, call_id: str) -> str:
        return call_id

    def parse_chat_response(self, data: Any, request: ChatRequest) -> ChatResponse:
        if isinstance(data, dict) and data.get("error"):
            raise self.error_from_payload(data)
        conform(data, ChatCompletion, provider=self.provider, what="chat response")
        choice = first_choice(data["choices"])  # by index, as the stream decoder routes its chunks
        if choice is None:
            raise ProtocolError("the chat response has no choice with index 0", provider=self.provider)
        message = choice.get("message") or {}
        text, reasoning = split_content(message.get("content"))
        reasoning += reasoning_field(message)
        calls = [self.parse_tool_call(c, i) for i, c in enumerate(message.get("tool_calls") or ())]
        native = choice.get("finish_reason")
        refusal = message.get("refusal")
        if native is None and not (text or calls or reasoning or refusal):  # as the stream decoder rules
            raise ProtocolError("the chat response has no text, no tool call and no finish_reason",
                                provider=self.provider)
        finish = normalize_finish_reason(native)
        if refusal:  # text after any content, as a stream of the same answer delivers it
            if not text:
                finish = "content_filter"
            text += refusal
        return ChatResponse(
            content=text,
            finish_reason=finish or ("tool_calls" if calls else "stop"),
            usage=parse_openai_usage(data.get("usage")) or Usage(),
            tool_calls=calls,
            provider=self.provider,
            model=data.get("model") or request.model,
            raw=data,
            id=data.get("id"),
            reasoning=reasoning,
            # the same shape a collected stream has, so streamed and plain answers compare equal
            reasoning_blocks=[ReasoningBlock(text=reasoning)] if reasoning else [],
            native_finish_reason=native,
        )

    def parse_tool_call(self, call: Mapping[str, Any], index: int) -> ToolCall:
        function = call.get("function") or {}
        call_id = call.get("id") or f"call_{index}"
        name = function.get("name") or ""
        arguments = function.get("arguments")
        if isinstance(arguments, Mapping):
            return ToolCall(id=call_id, name=name, arguments=dict(arguments))
        return ToolCall.from_json_text(call_id, name, arguments if isinstance(arguments, str) else "")

    def create_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return OpenAIStreamDecoder(self, request)

    # -- embeddings ---------------------------------------------------------------------------

    def build_embedding_request(self, request: EmbeddingRequest) -> HTTPRequest:
        body: dict[str, Any] = {"model": request.model, "input": list(request.inputs)}
        if self.embedding_encoding is not None:
            body["encoding_format"] = self.embedding_encoding
        body.update(request.params)
        return HTTPRequest("POST", self.embeddings_path, json=body)

    def parse_embedding_response(self, data: Any, request: EmbeddingRequest) -> EmbeddingResponse:
        conform(data, EmbeddingList, provider=self.provider, what="embedding response")
        items = data["data"]
        if len(items) != len(request.inputs):
            raise ProtocolError(f"embedding response has {len(items)} vectors for {len(request.inputs)} inputs",
                                provider=self.provider)
        vectors = [_vector(item.get("embedding"), self.provider) for item in _in_input_order(items, self.provider)]
        return EmbeddingResponse(
            embeddings=vectors,
            model=data.get("model") or request.model,
            provider=self.provider,
            usage=parse_openai_usage(data.get("usage")) or Usage(),
        )

    # -- models -------------------------------------------------------------------------------

    def build_list_models_request(self, cursor: str | None) -> HTTPRequest:
        return HTTPRequest("GET", self.models_path)

    def parse_list_models(self, data: Any) -> tuple[list[ModelInfo], str | None]:
        conform(data, ModelList, provider=self.provider, what="model list")
        models = [
            ModelInfo(id=item["id"], name=item.get("name") or item["id"], created=item.get("created"),
                      context_length=item.get("max_context_length") or item.get("context_length"), raw=item)
            for item in data["data"]
        ]
        return models, None


def _in_input_order(items: list[Any], provider: str) -> list[Any]:
    """The items by their ``index``: all or none must have one, each input's exactly once (never a guess)."""
    indexes = [item.get("index") for item in items]
    if all(index is None for index in indexes):
        return items
    if sorted(i if isinstance(i, int) and not isinstance(i, bool) else -1 for i in indexes) != list(range(len(items))):
        raise ProtocolError(f"embedding indexes {str(indexes)[:80]} do not number the {len(items)} inputs "
                            "once each", provider=provider)
    return sorted(items, key=lambda item: item["index"])


def _vector(value: Any, provider: str) -> list[float]:
    if value in ([], ""):
        raise ProtocolError("the server returned an empty embedding vector", provider=provider)
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            # Some servers (llama.cpp's, for chat models) return one vector per *token*.
            raise ProtocolError("the server returned one vector per token, not one per input; use an "
                                "embedding model (or a server that pools token vectors)", provider=provider)
        return conform(value, list[float], provider=provider, what="embedding vector")
    if isinstance(value, str):  # base64 of little-endian float32 (WIRE.md §2.5)
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raise ProtocolError("embedding is not valid base64", provider=provider) from None
        if len(raw) % 4:
            raise ProtocolError("base64 embedding length is not a multiple of 4", provider=provider)
        floats = array("f")
        floats.frombytes(raw)
        if sys.byteorder == "big":  # pragma: no cover - no big-endian CI machine
            floats.byteswap()
        return floats.tolist()
    raise ProtocolError("embedding is neither a list of floats nor base64", provider=provider)
