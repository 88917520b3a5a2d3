"""Writing Claude's requests: the ``POST /v1/messages`` body, as pure functions (WIRE.md §1.2).

System messages are lifted to the top-level ``system`` field, ``max_tokens`` is always sent,
tools and tool results become ``tool_use`` / ``tool_result`` blocks, images become ``image``
blocks and thinking blocks go back with their signatures. Errors name the message at fault
(``messages[2].content[0]``) and are raised before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidRequestError
from ..requests import ChatRequest
from ..types import ContentPart, Message, ReasoningBlock
from ..wire.data_urls import parse_data_url

__all__ = ["DEFAULT_MAX_TOKENS", "THINKING_HINT", "Blocks", "chat_body", "check_thinking", "translate_messages"]

#: ``max_tokens`` is required by the API; this is sent when the caller gives none.
DEFAULT_MAX_TOKENS = 4096
#: The shapes the ``thinking`` option takes, as said in its description and its error.
THINKING_HINT = ("{'type': 'enabled', 'budget_tokens': N} with N >= 1024, {'type': 'adaptive'} "
                 "or {'type': 'disabled'}")
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}
Blocks = list[dict[str, Any]]


def check_thinking(value: Any, provider: str) -> None:
    """Refuse a ``thinking`` option the API would reject (a budget below 1024, an unknown type)."""
    if value is None:
        return
    kind = value.get("type")
    budget = value.get("budget_tokens")
    ok = kind in ("adaptive", "disabled") or (
        kind == "enabled" and isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1024)
    if not ok:
        raise InvalidRequestError(f"option 'thinking' must be {THINKING_HINT} for {provider}, "
                                  f"got {value!r}", provider=provider)


# -- the body -----------------------------------------------------------------------------------

def chat_body(request: ChatRequest, system: str | Blocks | None, messages: Blocks) -> dict[str, Any]:
    """The JSON body for already translated messages (see :func:`translate_messages`).

    A ``response_format`` other than ``json_schema`` is left out: refusing it takes the
    connector's capabilities, so the connector does that.
    """
    params = request.params
    body: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": _max_tokens(params)}
    if system is not None:
        body["system"] = system
    _apply_params(body, params)
    if request.stream:
        body["stream"] = True
    return body


def _max_tokens(params: Mapping[str, Any]) -> int:
    value = params.get("max_tokens")
    if value is not None:
        return int(value)
    thinking = params.get("thinking") or {}
    budget = thinking.get("budget_tokens") if thinking.get("type") == "enabled" else None
    if isinstance(budget, int) and budget >= DEFAULT_MAX_TOKENS:
        # The thinking budget counts toward max_tokens and must stay below it (WIRE.md §1.2);
        # leave the default's worth of room for the answer itself.
        return budget + DEFAULT_MAX_TOKENS
    return DEFAULT_MAX_TOKENS


def _apply_params(body: dict[str, Any], params: Mapping[str, Any]) -> None:
    for name in ("temperature", "top_p", "top_k", "thinking", "metadata", "service_tier"):
        if name in params:
            body[name] = params[name]
    if "stop" in params:
        body["stop_sequences"] = list(params["stop"])
    tools = params.get("tools")
    if tools:
        body["tools"] = [_wire_tool(t["function"]) for t in tools]
    choice = _wire_tool_choice(params.get("tool_choice"), params.get("parallel_tool_calls"), bool(tools))
    if choice is not None:
        body["tool_choice"] = choice
    output: dict[str, Any] = {}
    response_format = params.get("response_format")
    if response_format is not None and response_format["type"] == "json_schema":
        output["format"] = {"type": "json_schema", "schema": response_format["json_schema"]["schema"]}
    if "effort" in params:
        output["effort"] = params["effort"]
    if output:
        body["output_config"] = output


def _wire_tool(function: Mapping[str, Any]) -> dict[str, Any]:
    schema = dict(function["parameters"])
    schema.setdefault("type", "object")  # Claude requires an object schema; OpenAI tolerates its absence
    tool: dict[str, Any] = {"name": function["name"], "input_schema": schema}
    if function.get("description"):
        tool["description"] = function["description"]
    if "strict" in function:
        tool["strict"] = function["strict"]
    return tool


def _wire_tool_choice(choice: Any, parallel: Any, has_tools: bool) -> dict[str, Any] | None:
    """OpenAI's tool_choice (+ ``parallel_tool_calls``) as Claude's ``tool_choice`` object."""
    if choice is None:
        if parallel is False and has_tools:
            return {"type": "auto", "disable_parallel_tool_use": True}
        return None
    if isinstance(choice, dict):
        out: dict[str, Any] = {"type": "tool", "name": choice["function"]["name"]}
    else:
        out = {"type": _TOOL_CHOICE[choice]}
    if parallel is False and out["type"] != "none":  # "none" takes no such flag
        out["disable_parallel_tool_use"] = True
    return out


# -- the messages -------------------------------------------------------------------------------

def translate_messages(messages: Sequence[Message], provider: str) -> tuple[str | Blocks | None, Blocks]:
    """Split off the system prompt and turn the rest into Claude turns.

    System messages (wherever they are) become the top-level ``system``: a plain string
    for one string message, text blocks otherwise. Consecutive tool results become one
    user turn of ``tool_result`` blocks, as the API expects.
    """
    system: Blocks = []
    turns: Blocks = []
    results: Blocks | None = None  # the open user turn of tool results
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.role
        if role == "system":
            system.extend(_system_blocks(message.content, where, provider))
            continue
        if role == "tool":
            block = _tool_result(message, where, provider)
            if results is None:
                results = []
                turns.append({"role": "user", "content": results})
            results.append(block)
            continue
        results = None
        turn = _assistant_turn(message, where, provider) if role == "assistant" \
            else {"role": "user", "content": _user_content(message.content, where, provider)}
        if turn is not None:
            turns.append(turn)
    if not turns:
        raise InvalidRequestError("Claude needs at least one user message besides the system prompt",
                                  provider=provider)
    return _system_value(system, messages), turns


def _system_blocks(content: str | list[ContentPart] | None, where: str, provider: str) -> Blocks:
    if isinstance(content, str) or content is None:
        return [{"type": "text", "text": content}] if content else []
    if any(part["type"] != "text" for part in content):
        raise InvalidRequestError(f"{where}: Claude's system prompt takes text only, not images",
                                  provider=provider)
    return [{"type": "text", "text": part["text"]} for part in content if part["text"]]


def _system_value(blocks: Blocks, messages: Sequence[Message]) -> str | Blocks | None:
    if not blocks:
        return None
    system_messages = [m for m in messages if m.role == "system"]
    if len(blocks) == 1 and len(system_messages) == 1 and isinstance(system_messages[0].content, str):
        return str(blocks[0]["text"])  # the plain-string form, as most callers (and the SDK docs) send it
    return blocks


def _user_content(content: str | list[ContentPart] | None, where: str, provider: str) -> str | Blocks:
    if content is None or isinstance(content, str):
        return content or ""
    return _blocks(content, where, provider)


def _blocks(parts: list[ContentPart], where: str, provider: str) -> Blocks:
    blocks: Blocks = []
    for i, part in enumerate(parts):
        if part["type"] == "text":
            if part["text"]:  # the API rejects empty text blocks
                blocks.append({"type": "text", "text": part["text"]})
        else:
            blocks.append(_image(part["image_url"]["url"], f"{where}.content[{i}]", provider))
    return blocks


def _image(url: str, where: str, provider: str) -> dict[str, Any]:
    """A data URL becomes a base64 source, an http(s) URL a url source (WIRE.md §1.2)."""
    image = parse_data_url(url)
    if image is None:
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type = image.media_type.strip().lower()
    if media_type == "image/jpg":  # a common misspelling the API would reject
        media_type = "image/jpeg"
    if not image.is_base64 or not image.data:
        raise InvalidRequestError(f"{where}: image data URLs must be base64, like "
                                  "data:image/png;base64,...", provider=provider)
    if media_type not in _IMAGE_TYPES:
        raise InvalidRequestError(f"{where}: Claude accepts {', '.join(_IMAGE_TYPES)} images, "
                                  f"not {media_type or 'an untyped data URL'}", provider=provider)
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": image.data}}


def _assistant_turn(message: Message, where: str, provider: str) -> dict[str, Any] | None:
    content = message.content
    if not message.reasoning and not message.tool_calls and isinstance(content, str) and content:
        return {"role": "assistant", "content": content}
    # Thinking blocks first: Claude checks their signatures and wants them leading the turn.
    blocks = [b for b in (_thinking_block(r) for r in message.reasoning) if b is not None]
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif content is not None:
        if any(part["type"] != "text" for part in content):
            raise InvalidRequestError(f"{where}: Claude accepts images in user and tool messages only",
                                      provider=provider)
        blocks.extend(_blocks(content, where, provider))
    blocks.extend({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                  for call in message.tool_calls)
    # A turn with nothing in it carries no information and the API rejects empty content.
    return {"role": "assistant", "content": blocks} if blocks else None


def _thinking_block(block: ReasoningBlock) -> dict[str, Any] | None:
    """A reasoning block as Claude wants it back; ``None`` for blocks Claude cannot verify.

    Reasoning without a signature (from another provider, or hand-written) would be rejected,
    so it is left out.
    """
    if block.redacted_data:
        return {"type": "redacted_thinking", "data": block.redacted_data}
    if block.signature:
        return {"type": "thinking", "thinking": block.text, "signature": block.signature}
    return None


def _tool_result(message: Message, where: str, provider: str) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    content = message.content
    if isinstance(content, list):
        content = _blocks(content, where, provider) or None
    if content:
        block["content"] = content
    return block
