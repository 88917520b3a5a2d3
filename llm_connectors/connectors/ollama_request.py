"""Writing Ollama's requests: the ``POST /api/chat`` body, as pure functions (WIRE.md §4.2).

Sampling options go in the ``options`` object (``max_tokens`` becomes ``num_predict``), JSON
mode is ``format: "json"`` and a JSON schema is the ``format`` itself, ``reasoning_effort`` is
the top-level ``think`` (``"none"`` turns thinking off), images are bare base64 in
``message.images``, and a tool result names its tool (``tool_name``), looked up from the
assistant call it answers. Messages carry exactly the fields the official client (ollama
0.6.3) sends: no tool-call ids, which its ``Message`` model does not have. What Ollama cannot
take (documents, remote images) is refused here, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidRequestError, UnsupportedCapabilityError
from ..requests import ChatRequest
from ..types import Message
from ..wire.data_urls import parse_data_url
from ..wire.messages import text_of, tool_result_text

__all__ = ["chat_body", "check_top_level", "no_tool_choice_error", "translate_messages"]

# Normalised option -> key in the native `options` object; declared extras keep their own name.
_OPTION_KEYS = {"max_tokens": "num_predict"}
_THINK_LEVELS = ("low", "medium", "high", "max")


def check_top_level(extra: Mapping[str, Any] | None, provider: str) -> None:
    """Check the documented top-level fields given through ``provider_options``/``extra``."""
    if not extra:
        return
    if "keep_alive" in extra:
        value = extra["keep_alive"]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidRequestError(
                f"keep_alive must be a duration string like '5m' or a number of seconds, got {value!r}",
                provider=provider)
    if "think" in extra:
        value = extra["think"]
        if not isinstance(value, bool) and value not in _THINK_LEVELS:
            raise InvalidRequestError(
                f"think must be True, False or one of {', '.join(map(repr, _THINK_LEVELS))}, got {value!r}",
                provider=provider)


def no_tool_choice_error(choice: Any, provider: str) -> UnsupportedCapabilityError:
    """The error for any ``tool_choice`` but ``"auto"``: Ollama has no such field."""
    shown = choice if isinstance(choice, str) else f"function {choice['function']['name']!r}"
    hint = " (to forbid tool calls, leave out tools)" if choice == "none" else ""
    return UnsupportedCapabilityError(
        f"Ollama has no tool_choice: the model always decides itself ('auto'); cannot honour "
        f"tool_choice {shown}{hint}", provider=provider)


# -- the body -----------------------------------------------------------------------------------

def chat_body(request: ChatRequest, messages: list[dict[str, Any]], provider: str) -> dict[str, Any]:
    """The JSON body for already translated messages (see :func:`translate_messages`)."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "stream": request.stream,  # always explicit: the server streams when it is absent
    }
    options: dict[str, Any] = {}
    for name, value in request.params.items():
        if name == "tools":
            body["tools"] = [_wire_tool(tool) for tool in value]
        elif name == "tool_choice":
            if value != "auto":  # prepare_chat refuses these; a hand-built request must too
                raise no_tool_choice_error(value, provider)
        elif name == "reasoning_effort":
            body["think"] = False if value == "none" else value  # a level; the client's `think: bool | str`
        elif name == "response_format":
            if value["type"] == "json_object":
                body["format"] = "json"
            elif value["type"] == "json_schema":
                body["format"] = value["json_schema"]["schema"]
        else:
            options[_OPTION_KEYS.get(name, name)] = value
    if options:
        body["options"] = options
    return body


def _wire_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    # Ollama's tool has name, description and parameters only; `strict` has no meaning there.
    function = {k: v for k, v in tool["function"].items() if k != "strict"}
    return {"type": "function", "function": function}


# -- the messages -------------------------------------------------------------------------------

def translate_messages(messages: Sequence[Message], provider: str) -> list[dict[str, Any]]:
    """The conversation in Ollama's shape; tool results get the name of the call they answer."""
    names: dict[str, str] = {}
    out = []
    for index, message in enumerate(messages):
        for call in message.tool_calls:
            names[call.id] = call.name  # a later turn reusing an id wins, as it answers that one
        out.append(_wire_message(message, index, names, provider))
    return out


def _wire_message(message: Message, index: int, names: Mapping[str, str], provider: str) -> dict[str, Any]:
    content = message.content
    if message.role == "tool":
        call_id = message.tool_call_id or ""
        tool_name = names.get(call_id) or message.name
        if not tool_name:
            raise InvalidRequestError(
                f"messages[{index}]: the tool result answers tool_call_id {call_id!r}, but no earlier "
                "assistant message has a call with that id; Ollama needs the tool's name "
                "(pass name='<tool name>' on the tool message)", provider=provider)
        # No tool_call_id: the official client sends none (the name pairs the result with its call).
        return {"role": "tool", "content": tool_result_text(content), "tool_name": tool_name}
    # `content` is required by the spec's ChatMessage, so it is sent even when empty.
    out: dict[str, Any] = {"role": message.role, "content": text_of(content)}
    if isinstance(content, list):
        if any(part.get("type") == "file" for part in content):  # the base refuses them first
            raise UnsupportedCapabilityError(
                f"messages[{index}]: Ollama's chat API takes no documents (file parts); extract the "
                "text and send it as a text part", provider=provider)
        images = [_wire_image(part["image_url"]["url"], f"messages[{index}]", provider)
                  for part in content if part.get("type") == "image_url"]
        if images:
            out["images"] = images
    if message.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": dict(c.arguments)}}
                             for c in message.tool_calls]
    thinking = "".join(block.text for block in message.reasoning)
    if thinking and message.role == "assistant":
        out["thinking"] = thinking
    return out


def _wire_image(url: str, where: str, provider: str) -> str:
    """A data: URL as the bare base64 Ollama wants; remote URLs are refused (no I/O here)."""
    image = parse_data_url(url)
    if image is None:
        host = url.split("://", 1)[-1].split("/", 1)[0]
        raise UnsupportedCapabilityError(
            f"{where}: Ollama's native API takes images only as base64 data, not URLs "
            f"(got an image URL on {host}); download it and pass a data URL such as "
            "'data:image/png;base64,...'", provider=provider)
    if not image.data.strip():
        raise InvalidRequestError(f"{where}: the image data URL has no data", provider=provider)
    if image.media_type and not image.media_type.lower().startswith("image/"):
        raise InvalidRequestError(f"{where}: data URL of type {image.media_type!r} is not an image",
                                  provider=provider)
    try:
        return image.base64_data()
    except ValueError:  # binascii.Error is one
        raise InvalidRequestError(f"{where}: the image data URL is not valid base64", provider=provider) from None
