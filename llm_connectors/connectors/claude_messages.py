"""Writing Claude's turns: neutral messages as Messages API ``system`` and ``messages`` (pure functions).

System messages are lifted to the top-level ``system`` field, tool results become ``tool_result``
blocks (with ``is_error``), images ``image`` blocks, document parts ``document`` blocks, and
thinking blocks go back with their signatures. A part's ``cache_control`` (prompt caching) is
copied onto the block it becomes. Errors name the message at fault (``messages[2].content[0]``)
and are raised before anything is sent.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from ..errors import InvalidRequestError
from ..types import ContentPart, Message, ReasoningBlock
from ..wire.data_urls import parse_data_url

__all__ = ["Blocks", "translate_messages"]

Blocks = list[dict[str, Any]]
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
#: Document data URLs Claude reads: PDFs (sent as base64) and plain text (sent as text).
_DOCUMENT_TYPES = ("application/pdf", "text/plain")


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
        if role in ("system", "developer"):  # developer is OpenAI's name for the same turn
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
        raise InvalidRequestError(f"{where}: Claude's system prompt takes text only, not images or documents",
                                  provider=provider)
    return [_cached({"type": "text", "text": part["text"]}, part) for part in content if part["text"]]


def _system_value(blocks: Blocks, messages: Sequence[Message]) -> str | Blocks | None:
    if not blocks:
        return None
    system_messages = [m for m in messages if m.role in ("system", "developer")]
    if len(blocks) == 1 and len(system_messages) == 1 and isinstance(system_messages[0].content, str):
        return str(blocks[0]["text"])  # the plain-string form, as most callers (and the SDK docs) send it
    return blocks


def _user_content(content: str | list[ContentPart] | None, where: str, provider: str) -> str | Blocks:
    if content is None or isinstance(content, str):
        return content or ""
    return _blocks(content, where, provider)


def _cached(block: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    """``block`` with the part's prompt-cache marker, sent as given (validated by the normaliser)."""
    if part.get("cache_control") is not None:
        block["cache_control"] = dict(part["cache_control"])
    return block


def _blocks(parts: list[ContentPart], where: str, provider: str) -> Blocks:
    blocks: Blocks = []
    for i, part in enumerate(parts):
        kind = part["type"]
        if kind == "text":
            if part["text"]:  # the API rejects empty text blocks
                blocks.append(_cached({"type": "text", "text": part["text"]}, part))
        elif kind == "file":
            blocks.append(_cached(_document(part["file"], f"{where}.content[{i}]", provider), part))
        else:
            blocks.append(_cached(_image(part["image_url"]["url"], f"{where}.content[{i}]", provider), part))
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


def _document(file: Mapping[str, Any], where: str, provider: str) -> dict[str, Any]:
    """A ``file`` part as a ``document`` block: a PDF or plain-text data URL, a URL, or a Files API id."""
    if file.get("file_id"):
        source: dict[str, Any] = {"type": "file", "file_id": file["file_id"]}
    elif file.get("url"):
        source = {"type": "url", "url": file["url"]}
    else:
        source = _document_data(str(file.get("file_data") or ""), where, provider)
    block: dict[str, Any] = {"type": "document", "source": source}
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def _document_data(url: str, where: str, provider: str) -> dict[str, Any]:
    data = parse_data_url(url)
    media_type = data.media_type.split(";")[0].strip().lower() if data is not None else ""
    if data is None or media_type not in _DOCUMENT_TYPES:
        raise InvalidRequestError(f"{where}: Claude reads documents given as {' or '.join(_DOCUMENT_TYPES)} "
                                  f"data URLs, a URL or a file_id, not {media_type or 'this file_data'}",
                                  provider=provider)
    try:
        encoded = data.base64_data()
    except (ValueError, binascii.Error):
        raise InvalidRequestError(f"{where}: the document's base64 data does not decode",
                                  provider=provider) from None
    if media_type == "application/pdf":
        return {"type": "base64", "media_type": media_type, "data": encoded}
    raw = base64.b64decode(encoded) if data.is_base64 else unquote_to_bytes(data.data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError(f"{where}: a text/plain document must be UTF-8 text",
                                  provider=provider) from None
    # Claude takes plain text as text, not base64 (PlainTextSourceParam).
    return {"type": "text", "media_type": "text/plain", "data": text}


def _assistant_turn(message: Message, where: str, provider: str) -> dict[str, Any] | None:
    content = message.content
    if not message.reasoning and not message.tool_calls and isinstance(content, str) and content:
        return {"role": "assistant", "content": content}
    # Thinking blocks first: Claude checks their signatures and wants them leading the turn.
    blocks = [b for b in (_thinking_block(r, provider) for r in message.reasoning) if b is not None]
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif content is not None:
        if any(part["type"] != "text" for part in content):
            # Documents in an assistant turn are a 400 under API version 2026-10-21; images always were.
            raise InvalidRequestError(f"{where}: Claude accepts images and documents in user and tool "
                                      "messages only", provider=provider)
        blocks.extend(_blocks(content, where, provider))
    blocks.extend({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                  for call in message.tool_calls)
    # A turn with nothing in it carries no information and the API rejects empty content.
    return {"role": "assistant", "content": blocks} if blocks else None


def _thinking_block(block: ReasoningBlock, provider: str) -> dict[str, Any] | None:
    """A reasoning block as Claude wants it back; ``None`` for blocks Claude cannot verify.

    Reasoning without a signature (hand-written), or made by another provider (whose signature
    Claude cannot check: Mistral signs its blocks too), would be rejected, so it is left out.
    """
    if block.provider not in (None, provider):
        return None
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
    if message.is_error:  # the model can then tell a failed call from its result
        block["is_error"] = True
    return block
