"""Mistral (``mistral``): chat completions, embeddings and models at api.mistral.ai.

Mistral speaks the OpenAI Chat Completions dialect with differences (WIRE.md §3) that are
all handled here:

* ``random_seed`` instead of ``seed``; temperature 0-1.5; ``top_p`` in (0, 1]; ``tool_choice``
  ``"any"`` where OpenAI says ``"required"``; its own options (``safe_prompt``, ``prompt_mode``,
  ``prediction``...).
* Unknown body fields are rejected with 422 (``extra_forbidden``), so nothing OpenAI-only is
  ever sent: no ``stream_options`` (usage rides on the final ``finish_reason`` chunk anyway),
  no ``max_completion_tokens``, no ``name`` outside tool messages.
* Tool-call ids must be exactly 9 characters of ``[a-zA-Z0-9]``; ids from other providers
  (``call_…``, ``toolu_…``) are mapped deterministically, so an assistant turn and the tool
  result answering it always carry the same id.
* Tool calls stream whole, often every one with ``index: 0``; ``content`` may be a list of
  text and thinking chunks; errors come in several body shapes (see :meth:`parse_error`).
* Thinking chunks carry a ``signature`` "to replay some reasoning blocks across turns"
  (mistralai 3.7.0 ``ThinkChunk``): each becomes a :class:`ReasoningBlock` with it, and signed
  blocks are sent back, before the text, on later assistant turns.
* Documents are ``document_url`` chunks (an http(s) URL or a base64 ``data:`` URL, with
  ``document_name``) or ``file`` chunks (``file_id`` of an upload).
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from ..definition import AuthSpec, Capability, ParameterDefinition, ServiceDefinition, common_parameters
from ..errors import InvalidRequestError, LLMConnectorError, OverloadedError, RateLimitError
from ..requests import ChatRequest, EmbeddingRequest, HTTPRequest
from ..stream import StreamDecoder
from ..types import ChatChunk, ChatResponse, Message, MessageInput, ReasoningBlock, ToolCall
from ..wire import jsonio as _json
from ..wire.classify import ErrorInfo
from ..wire.framing import SSEEvent
from .openai_compat import OpenAICompatibleConnector
from .openai_parse import OpenAIStreamDecoder, first_choice, thinking_blocks, thinking_text

if TYPE_CHECKING:
    from .mistral_batches import MistralBatches

__all__ = ["MISTRAL", "MistralConnector", "MistralStreamDecoder", "mistral_tool_call_id"]

_EFFORT = ("none", "minimal", "low", "medium", "high", "xhigh", "max")  # mistralai 3.7.0 ReasoningEffort
_TOOL_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")
_ID_ALPHABET = string.ascii_letters + string.digits
_OFFICIAL_HOST = "api.mistral.ai"
# Older bodies say only this, with code null and type invalid_request_error (WIRE.md §3.7).
_CAPACITY_MESSAGE = "service tier capacity exceeded"
_CAPACITY_CODE = "service_tier_capacity_exceeded"

MISTRAL = ServiceDefinition(
    id="mistral",
    name="Mistral AI",
    base_url="https://api.mistral.ai/v1",
    base_url_env="MISTRAL_BASE_URL",
    auth=AuthSpec(kind="bearer", env_var="MISTRAL_API_KEY"),
    capabilities=frozenset({
        Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.VISION, Capability.JSON_MODE,
        Capability.JSON_SCHEMA, Capability.EMBEDDINGS, Capability.LIST_MODELS, Capability.REASONING,
        Capability.DOCUMENTS,
    }),
    parameters=(
        *common_parameters(temperature_max=1.5),
        ParameterDefinition("safe_prompt", "boolean",
                            "Inject Mistral's safety prompt before the conversation.", default=False),
        ParameterDefinition("frequency_penalty", "number", "Penalise tokens by how often they appeared.",
                            minimum=-2.0, maximum=2.0),
        ParameterDefinition("presence_penalty", "number", "Penalise tokens that already appeared.",
                            minimum=-2.0, maximum=2.0),
        ParameterDefinition("parallel_tool_calls", "boolean", "Allow several tool calls in one turn.",
                            default=True),
        ParameterDefinition("prompt_mode", "string", "'reasoning' selects the reasoning system prompt.",
                            choices=("reasoning",)),
        ParameterDefinition("reasoning_effort", "string", "Reasoning effort for reasoning models.",
                            choices=_EFFORT),
        ParameterDefinition("prediction", "object",
                            "Expected output, {'type': 'content', 'content': ...}, to speed up edits."),
        ParameterDefinition("service_tier", "string", "Priority or standard capacity.",
                            choices=("auto", "standard_only")),
        ParameterDefinition("prompt_cache_key", "string", "Groups requests that share a prompt prefix."),
        ParameterDefinition("metadata", "object", "Free-form metadata stored with the request."),
    ),
    default_model="mistral-small-latest",
    default_embedding_model="mistral-embed",
    model_patterns=("mistral-", "open-mistral", "open-mixtral", "open-codestral", "mixtral-", "codestral",
                    "pixtral", "ministral", "magistral", "devstral", "voxtral"),
    docs_url="https://docs.mistral.ai/api/",
)


def mistral_tool_call_id(call_id: str) -> str:
    """The id Mistral accepts for ``call_id``: itself if valid, else a stable 9-character digest.

    Mistral rejects any tool-call id that is not ``[a-zA-Z0-9]{9}`` (400, code 3280). Ids from
    other providers are hashed, not stored, so the mapping is the same in every request and
    process: the assistant turn and the tool result answering it always agree.
    """
    if _TOOL_CALL_ID.fullmatch(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        chars.append(_ID_ALPHABET[digit])
    return "".join(chars)


class MistralStreamDecoder(OpenAIStreamDecoder):
    """Mistral's SSE stream (WIRE.md §3.4).

    Differences from the OpenAI decoder: an in-band error may come in Mistral's own
    ``{"object": "error", ...}`` shape, and tool calls arrive whole, several of them possibly
    with the same ``index`` (the spec's default is 0), so a new id at a used index starts a
    new call instead of being glued onto the previous one.
    """

    def __init__(self, connector: MistralConnector, request: ChatRequest) -> None:
        super().__init__(connector, request)
        self._slots: dict[Any, int] = {}  # wire index -> key of the call it currently feeds
        self._thinking: list[tuple[list[str], list[str]]] = []  # per block: text fragments, signature
        self._open = False  # the last thinking block may still grow

    def on_content(self, content: Any) -> None:
        """Rebuild the thinking blocks as the non-streamed answer has them (one per chunk, signed).

        A block's fragments arrive as separate ``thinking`` chunks; it ends at its signature or at
        the first answer text.
        """
        if isinstance(content, str):
            self._open = self._open and not content
            return
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "thinking":
                if not self._open:
                    self._thinking.append(([], []))
                    self._open = True
                texts, signature = self._thinking[-1]
                texts.append(thinking_text(part))
                if isinstance(part.get("signature"), str) and part["signature"]:
                    signature[:] = [part["signature"]]
                    self._open = False
            elif part.get("type") == "text" and part.get("text"):
                self._open = False

    def _final(self) -> ChatChunk | None:
        chunk = super()._final()
        self.reasoning_blocks = [ReasoningBlock(text="".join(texts), signature=signature[0] if signature else None)
                                 for texts, signature in self._thinking]
        return chunk

    def feed(self, event: SSEEvent) -> ChatChunk | None:
        data = event.data
        # Cheap pre-filter: `"error"` as a JSON string only appears in error objects and in
        # `"finish_reason":"error"`; content quotes are escaped. Only those events are parsed twice.
        if '"error"' in data and not self.done:
            obj = _json.loads(data, provider=self.provider, what="stream event")
            if isinstance(obj, dict) and obj.get("object") == "error":
                raise self._connector.error_from_payload(obj)
        return super().feed(event)

    def _add_call_fragments(self, calls: list[Any]) -> None:
        for position, fragment in enumerate(calls):
            if not isinstance(fragment, Mapping):
                continue
            call_id = fragment.get("id")
            if not call_id or call_id == "null":  # "null" is the spec's placeholder default
                call_id = None
            function = fragment.get("function") or {}
            name = function.get("name")
            wire_index = fragment.get("index", position)
            key = self._slots.get(wire_index)
            entry = self._calls.get(key) if key is not None else None
            if entry is None or _starts_new_call(entry, call_id, name):
                key = len(self._calls)
                entry = self._calls[key] = [None, "", []]
                self._slots[wire_index] = key
            if call_id:
                entry[0] = call_id
            if name and not entry[1]:
                entry[1] = name
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                entry[2].append(arguments)
            elif isinstance(arguments, Mapping):  # the spec allows an object
                entry[2] = dict(arguments)


def _replayable(block: ReasoningBlock) -> bool:
    """Whether a reasoning block can go back to Mistral: signed, and not another provider's.

    Only a signature lets Mistral replay a block; unsigned reasoning (other providers, local
    servers) and Claude's redacted blocks are left out. A block that says where it comes from
    (``provider``) must come from Mistral: Claude signs its blocks too.
    """
    return bool(block.signature) and not block.redacted_data and block.provider in (None, "mistral")


def _think_chunk(block: ReasoningBlock) -> dict[str, Any]:
    # The shape mistralai 3.7.0 serialises a ThinkChunk in (sdk_requests/thinking_round_trip.json).
    return {"type": "thinking", "thinking": [{"type": "text", "text": block.text}], "signature": block.signature}


def _starts_new_call(entry: list[Any], call_id: str | None, name: str | None) -> bool:
    """Whether a fragment at an index already in use is a different call."""
    if call_id:
        return entry[0] is not None and entry[0] != call_id
    return bool(name) and bool(entry[1])  # a second name without an id: another whole call


class MistralConnector(OpenAICompatibleConnector):
    """Mistral AI's API (La Plateforme).

    Args:
        **kwargs: See :class:`~llm_connectors.BaseConnector`. ``base_url`` defaults to
            ``https://api.mistral.ai/v1`` (``MISTRAL_BASE_URL``); the bare
            ``https://api.mistral.ai`` the official SDK uses is accepted too.
    """

    definition: ClassVar[ServiceDefinition] = MISTRAL
    request_id_headers: ClassVar[tuple[str, ...]] = ("mistral-correlation-id", "x-kong-request-id")
    error_codes: ClassVar[Mapping[str, type[LLMConnectorError]]] = {
        "invalid_function_call": InvalidRequestError,  # code 3280: e.g. a tool-call id Mistral rejects
        "3280": InvalidRequestError,
        "rate_limited": RateLimitError,  # code 1300
        "1300": RateLimitError,
        "3210": InvalidRequestError,  # "Too many inputs in request, split into more batches."
        # Mistral's backend is at capacity: not the caller's rate limit (BerriAI/litellm#25078).
        _CAPACITY_CODE: OverloadedError,
        "3505": OverloadedError,
    }
    seed_field: ClassVar[str] = "random_seed"
    send_stream_options: ClassVar[bool] = False
    # The API refuses more than 512 inputs (code 3210) and about 16k tokens per request; 128
    # inputs keeps ordinary passages under both.
    embedding_batch_size: ClassVar[int | None] = 128

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        url = httpx.URL(self.base_url)
        if url.host == _OFFICIAL_HOST and url.path in ("", "/"):
            self.base_url = self.base_url.rstrip("/") + "/v1"  # the SDK's server URL has no /v1

    # -- validation -----------------------------------------------------------------------------

    def prepare_chat(self, model: str | None, messages: Iterable[MessageInput] | str,
                     options: Mapping[str, Any], *, stream: bool) -> ChatRequest:
        """Validate a chat call, plus the limits the definition cannot express."""
        request = super().prepare_chat(model, messages, options, stream=stream)
        params = request.params
        top_p = params.get("top_p")
        if top_p is not None and top_p <= 0:
            raise InvalidRequestError(
                f"option 'top_p' must be greater than 0 and at most 1 for mistral, got {top_p!r}",
                provider=self.provider)
        if "prediction" in params:
            params = {**params, "prediction": self._prediction(params["prediction"])}
        for index, message in enumerate(request.messages):
            content = message.content
            if message.role == "system" and isinstance(content, list) \
                    and any(part.get("type") != "text" for part in content):
                raise InvalidRequestError(
                    f"messages[{index}]: Mistral system messages take text only; put images and "
                    "documents in a user message", provider=self.provider)
        return replace(request, params=params) if params is not request.params else request

    def _prediction(self, value: Mapping[str, Any]) -> dict[str, Any]:
        content = value.get("content")
        if set(value) - {"type", "content"} or value.get("type", "content") != "content" \
                or not isinstance(content, str):
            raise InvalidRequestError(
                "option 'prediction' must look like {'type': 'content', 'content': 'expected text'}, "
                f"got a dict with keys {sorted(value)}", provider=self.provider)
        return {"type": "content", "content": content}

    # -- chat ---------------------------------------------------------------------------------

    def batch_translator(self) -> MistralBatches:
        """Batch jobs (``/v1/batch/jobs``): ``submit_batch`` and friends."""
        from .mistral_batches import MistralBatches  # loaded on first use: batch jobs are rare

        return MistralBatches(self)

    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        http_request = super().build_chat_request(request)
        # The official SDK always sends `stream` and an Accept header; do the same.
        http_request.json["stream"] = request.stream
        http_request.headers["accept"] = "text/event-stream" if request.stream else "application/json"
        return http_request

    def wire_tool_choice(self, choice: str | dict[str, Any]) -> Any:
        return "any" if choice == "required" else choice

    def wire_file(self, file: Mapping[str, Any]) -> dict[str, Any]:
        """A ``document_url`` chunk (URL or base64 data: URL, as the SDK's ``str`` takes) or a ``file`` chunk."""
        if "file_id" in file:
            return {"type": "file", "file_id": file["file_id"]}  # FileChunk has no name
        chunk = {"type": "document_url", "document_url": file.get("url") or file["file_data"]}
        if file.get("filename"):
            chunk["document_name"] = file["filename"]
        return chunk

    def wire_message(self, message: Message) -> dict[str, Any]:
        out = super().wire_message(message)
        content = message.content
        if message.role == "tool":
            if isinstance(content, list) and any(part.get("type") != "text" for part in content):
                out["content"] = self.wire_content(content)  # Mistral takes images in tool results
            if message.name:
                out["name"] = message.name  # Mistral's ToolMessage declares it (unlike OpenAI's)
        else:
            out.pop("name", None)  # only tool messages have a name in Mistral's schema (else 422)
        if message.role == "assistant":
            thinking = [_think_chunk(block) for block in message.reasoning if _replayable(block)]
            if thinking:
                text = out.get("content") or []
                out["content"] = thinking + ([{"type": "text", "text": text}] if isinstance(text, str) else text)
            out["prefix"] = False  # what the official SDK sends; True would make this turn a prefix
            for index, call in enumerate(out.get("tool_calls", ())):
                call["index"] = index
        return out

    def wire_tool_call_id(self, call_id: str) -> str:
        return mistral_tool_call_id(call_id)

    def parse_tool_call(self, call: Mapping[str, Any], index: int) -> ToolCall:
        if call.get("id") == "null":  # the spec's placeholder default, not an id
            call = {**call, "id": None}
        return super().parse_tool_call(call, index)

    def parse_chat_response(self, data: Any, request: ChatRequest) -> ChatResponse:
        if isinstance(data, dict) and data.get("object") == "error":
            raise self.error_from_payload(data)
        response = super().parse_chat_response(data, request)
        # One block per thinking chunk, with its signature: what the stream decoder builds too.
        blocks = thinking_blocks(first_choice(data["choices"])["message"].get("content"))
        if blocks:
            response.reasoning_blocks = blocks
        return response

    def create_stream_decoder(self, request: ChatRequest) -> StreamDecoder:
        return MistralStreamDecoder(self, request)

    # -- errors -------------------------------------------------------------------------------

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        """Read an error body; a capacity message without its code gets the code.

        The shared parser reads every shape of WIRE.md §3.7: ``detail`` as a string or a
        validation list, ``{"object": "error", "message": ...}`` with the message a string, an
        object or a JSON string, and a bare ``{"message": ...}``. Older capacity errors say
        only "Service tier capacity exceeded" (type ``invalid_request_error``, code null); the
        added code makes them classify like the newer ones (code 3505).
        """
        info = super().parse_error(status, body)
        if _CAPACITY_MESSAGE in info.message.lower() and _CAPACITY_CODE not in info.codes:
            return ErrorInfo(info.message, (*info.codes, _CAPACITY_CODE))
        return info

    # -- embeddings ---------------------------------------------------------------------------

    def build_embedding_request(self, request: EmbeddingRequest) -> HTTPRequest:
        body: dict[str, Any] = {"model": request.model, "input": list(request.inputs)}
        dimensions = request.params.get("dimensions")
        if dimensions is not None:
            body["output_dimension"] = dimensions
        return HTTPRequest("POST", self.embeddings_path, json=body, headers={"accept": "application/json"})
