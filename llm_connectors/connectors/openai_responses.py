"""Requests in OpenAI's Responses dialect (``POST /v1/responses``), built from the neutral messages and options.

Pure translation: a validated :class:`ChatRequest` in, the JSON body out. The mapping follows the
official API reference and openai 3.63.0 (``types/responses/response_create_params.py``); the SDK
captures in ``tests/fixtures/openai/sdk_requests`` pin it field for field.

* Leading ``system`` / ``developer`` turns become ``instructions``; later ones stay input messages.
* User turns are input messages (``input_text``, ``input_image``, ``input_file`` parts); assistant
  turns are their reasoning items, their text and one ``function_call`` item per tool call; tool
  results are ``function_call_output`` items.
* ``store`` is false unless the caller says otherwise, and ``include`` asks for
  ``reasoning.encrypted_content``, so a conversation carries its reasoning with it and works without
  server-side state (override with ``provider_options={"openai": {"include": [...]}}``).

Reasoning items round-trip through :class:`ReasoningBlock` by this convention: ``text`` is the
summary text, ``signature`` is ``"<item id>:<encrypted_content>"`` (:func:`reasoning_signature`),
``provider`` the connector's id. Item ids never contain a colon, so the split is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequestError
from ..json_values import check_json_value
from ..requests import ChatRequest
from ..types import ContentPart, Message, OptionRule, ReasoningBlock
from ..wire.messages import text_of

__all__ = [
    "RESPONSES_RULES",
    "ResponsesChatRequest",
    "build_responses_body",
    "builtin_tool",
    "check_max_output_tokens",
    "reasoning_signature",
    "split_reasoning_signature",
]

ENCRYPTED_REASONING = "reasoning.encrypted_content"
#: The smallest ``max_output_tokens`` the API takes (CreateResponse in the OpenAPI document).
MIN_OUTPUT_TOKENS = 16
_WHY = "the Responses API has no such field (openai 3.63.0 ResponseCreateParams)"
#: Chat Completions options the Responses API lacks: refused before I/O, or dropped with drop_params.
RESPONSES_RULES = tuple(OptionRule(option=name, rejected=True, why=_WHY)
                        for name in ("stop", "seed", "frequency_penalty", "presence_penalty", "logit_bias"))
#: Options sent under their own name (the rest are mapped below).
_SAME_NAME = frozenset({"temperature", "top_p", "parallel_tool_calls", "store", "metadata", "safety_identifier",
                        "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options", "service_tier",
                        "user", "top_logprobs"})


@dataclass(frozen=True, slots=True)
class ResponsesChatRequest(ChatRequest):
    """A chat request the OpenAI connector sends to the Responses API (same fields; the type says where)."""


def reasoning_signature(item_id: str | None, encrypted: str | None) -> str | None:
    """The :attr:`ReasoningBlock.signature` of a Responses reasoning item."""
    if not item_id and not encrypted:
        return None
    return f"{item_id or ''}:{encrypted or ''}"


def split_reasoning_signature(signature: str | None) -> tuple[str | None, str | None]:
    """``(item id, encrypted_content)`` from :func:`reasoning_signature`'s form."""
    if not signature or ":" not in signature:
        return None, None
    item_id, _, encrypted = signature.partition(":")
    return item_id or None, encrypted or None


def builtin_tool(tool: Any, where: str, provider: str) -> dict[str, Any] | None:
    """A built-in tool spec (``{"type": "web_search"}``...) as given, or ``None`` for a function tool.

    Built-in tools are passed through: the API documents their fields, and new ones appear often.
    """
    if not isinstance(tool, Mapping):
        return None
    kind = tool.get("type")
    if kind is None or kind == "function":
        return None
    if not isinstance(kind, str) or not kind:
        raise InvalidRequestError(f"{where}: a built-in tool needs a string 'type', like {{'type': 'web_search'}}",
                                  provider=provider)
    check_json_value(tool, where, provider)
    return dict(tool)


def build_responses_body(request: ChatRequest, provider: str) -> dict[str, Any]:
    """The ``/responses`` body for a validated request (``provider``: whose reasoning blocks to send back)."""
    instructions, items = _input(request.messages, provider)
    body: dict[str, Any] = {"model": request.model, "input": items}
    if instructions is not None:
        body["instructions"] = instructions
    include = [ENCRYPTED_REASONING]
    body["store"] = False
    reasoning: dict[str, Any] = {}
    text: dict[str, Any] = {}
    for name, value in request.params.items():
        if name in _SAME_NAME:
            body[name] = value
        elif name == "max_tokens":
            body["max_output_tokens"] = value
        elif name == "reasoning_effort":
            reasoning["effort"] = value
        elif name == "reasoning_summary":
            reasoning["summary"] = value
        elif name == "verbosity":
            text["verbosity"] = value
        elif name == "response_format":
            text["format"] = _text_format(value)
        elif name == "tools":
            body["tools"] = [_tool(tool) for tool in value]
        elif name == "tool_choice":
            body["tool_choice"] = _tool_choice(value)
        elif name == "logprobs":
            if value:
                include.append("message.output_text.logprobs")
        else:  # a Chat Completions option RESPONSES_RULES let through: a bug, not the caller's fault
            raise AssertionError(f"option {name!r} has no Responses mapping")
    if reasoning:
        body["reasoning"] = reasoning
    if text:
        body["text"] = text
    body["include"] = include
    if request.stream:
        body["stream"] = True
    return body


def check_max_output_tokens(params: Mapping[str, Any], provider: str) -> None:
    value = params.get("max_tokens")
    if value is not None and value < MIN_OUTPUT_TOKENS:
        raise InvalidRequestError(f"option 'max_tokens' must be at least {MIN_OUTPUT_TOKENS} on OpenAI's Responses "
                                  f"API (sent as max_output_tokens), got {value}", provider=provider)


# -- options -------------------------------------------------------------------------------------------


def _text_format(value: Mapping[str, Any]) -> dict[str, Any]:
    if value["type"] != "json_schema":
        return {"type": value["type"]}
    # Chat Completions nests the schema under `json_schema`; Responses puts its fields beside `type`.
    return {"type": "json_schema", **value["json_schema"]}


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, Mapping):
        return dict(tool)  # a built-in tool, passed through
    out: dict[str, Any] = {"type": "function", "name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    out["parameters"] = function["parameters"]
    # `strict` is required here, and the API's default is true (Chat Completions': false); the
    # neutral tool means what it means on Chat Completions unless the caller asks for strict.
    out["strict"] = bool(function.get("strict", False))
    return out


def _tool_choice(choice: str | Mapping[str, Any]) -> Any:
    if isinstance(choice, str):
        return choice
    return {"type": "function", "name": choice["function"]["name"]}


# -- messages ------------------------------------------------------------------------------------------


def _input(messages: Sequence[Message], provider: str) -> tuple[str | None, list[dict[str, Any]]]:
    lead: list[str] = []
    index = 0
    while index < len(messages) and messages[index].role in ("system", "developer") \
            and _is_text(messages[index].content):
        lead.append(text_of(messages[index].content))
        index += 1
    items: list[dict[str, Any]] = []
    for message in messages[index:]:
        _items(message, provider, items)
    return ("\n\n".join(lead) if lead else None), items


def _is_text(content: str | list[ContentPart] | None) -> bool:
    return isinstance(content, str) or (isinstance(content, list) and all(p["type"] == "text" for p in content))


def _items(message: Message, provider: str, out: list[dict[str, Any]]) -> None:
    role = message.role
    content = message.content
    if role == "tool":
        output: str | list[dict[str, Any]] = _parts(content) if isinstance(content, list) and not _is_text(content) \
            else text_of(content)
        out.append({"type": "function_call_output", "call_id": message.tool_call_id or "", "output": output})
        return
    if role != "assistant":
        out.append({"role": role, "content": content if isinstance(content, str) else _parts(content or [])})
        return
    out.extend(_reasoning_items(message.reasoning, provider))
    text = text_of(content)
    if text:  # the API takes only output_text in an assistant turn: plain text says exactly that
        out.append({"role": "assistant", "content": text})
    for call in message.tool_calls:
        out.append({"type": "function_call", "call_id": call.id, "name": call.name,
                    "arguments": call.arguments_json()})


def _reasoning_items(blocks: Iterable[ReasoningBlock], provider: str) -> Iterable[dict[str, Any]]:
    for block in blocks:
        if block.provider not in (None, provider):
            continue  # another provider's reasoning means nothing here (and its signature is not ours)
        item_id, encrypted = split_reasoning_signature(block.signature)
        if item_id is None and encrypted is None:
            continue  # plain text reasoning (Chat Completions, a caller's note): nothing the API can resume
        item: dict[str, Any] = {"type": "reasoning"}
        if item_id:
            item["id"] = item_id
        item["summary"] = [{"type": "summary_text", "text": block.text}] if block.text else []
        if encrypted:
            item["encrypted_content"] = encrypted
        yield item


def _parts(parts: Iterable[ContentPart]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        kind = part["type"]
        if kind == "text":
            out.append({"type": "input_text", "text": part["text"]})
        elif kind == "image_url":
            image = part["image_url"]
            out.append({"type": "input_image", "image_url": image["url"], "detail": image.get("detail", "auto")})
        else:  # file: the neutral {file_data | file_id | url, filename}
            file = part["file"]
            item: dict[str, Any] = {"type": "input_file"}
            if "url" in file:
                item["file_url"] = file["url"]
            for key in ("file_id", "file_data", "filename"):
                if key in file:
                    item[key] = file[key]
            out.append(item)
    return out
