"""Turning caller input (dicts or :class:`Message`) into validated messages, before any I/O."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..definition import check_cache_control
from ..errors import InvalidRequestError
from ..json_values import check_json_value, check_text
from ..types import ContentPart, Message, MessageInput, ReasoningBlock, ToolCall
from .data_urls import DataURL, parse_data_url

_ROLES = ("system", "developer", "user", "assistant", "tool")
_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id", "reasoning", "is_error")
_KEY_SET = frozenset(_KEYS)
#: Document media types a ``file`` part's data: URL may carry.
_DOCUMENT_TYPES = ("application/pdf", "text/plain")


def normalize_messages(messages: Iterable[MessageInput] | str, provider: str) -> tuple[Message, ...]:
    """Validate and normalise a conversation. A bare string is one user turn."""
    if isinstance(messages, str):
        check_text(messages, "the prompt", provider)
        return (Message(role="user", content=messages),)
    if isinstance(messages, Mapping):
        raise InvalidRequestError(
            "messages must be a list of messages, not a single dict; wrap it: [message]", provider=provider
        )
    given: object = messages  # typed as a list, but callers pass anything
    if isinstance(given, (bytes, bytearray)) or not isinstance(given, Iterable):
        raise InvalidRequestError(
            f"messages must be a prompt string or a list of messages, got {type(given).__name__}",
            provider=provider)
    out = tuple(_one(m, i, provider) for i, m in enumerate(messages))
    if not out:
        raise InvalidRequestError("messages is empty; pass at least one user message", provider=provider)
    return out


def _one(item: MessageInput, index: int, provider: str) -> Message:
    if isinstance(item, Message):
        # Trusted shape, but the role and parts still need checking (dataclasses do not validate).
        return _build(index, provider, item.role, item.content, item.name, item.tool_calls,
                      item.tool_call_id, item.reasoning, item.is_error)
    if not isinstance(item, Mapping):
        raise InvalidRequestError(
            f"messages[{index}] must be a dict like {{'role': 'user', 'content': '...'}} or a Message, "
            f"got {type(item).__name__}",
            provider=provider,
        )
    unknown = item.keys() - _KEY_SET
    if unknown:
        raise InvalidRequestError(
            f"messages[{index}] has unknown keys {sorted(map(str, unknown))}; allowed: {', '.join(_KEYS)}",
            provider=provider,
        )
    return _build(index, provider, item.get("role"), item.get("content"), item.get("name"),
                  item.get("tool_calls") or (), item.get("tool_call_id"), item.get("reasoning") or (),
                  item.get("is_error", False))


def _build(index: int, provider: str, role: Any, content: Any, name: Any, tool_calls: Any,
           tool_call_id: Any, reasoning: Any, is_error: Any) -> Message:
    where = f"messages[{index}]"
    if role not in _ROLES:
        raise InvalidRequestError(
            f"{where}: role must be one of {', '.join(_ROLES)}, got {role!r}", provider=provider
        )
    content = _content(content, where, provider)
    if name is not None and not isinstance(name, str):
        raise InvalidRequestError(f"{where}: name must be a string", provider=provider)
    if name is not None:
        check_text(name, f"{where}.name", provider)
    calls: tuple[ToolCall, ...] = ()
    if tool_calls:
        if not isinstance(tool_calls, (list, tuple)):
            raise InvalidRequestError(f"{where}: tool_calls must be a list of tool calls, got "
                                      f"{type(tool_calls).__name__}", provider=provider)
        if role != "assistant":
            raise InvalidRequestError(f"{where}: only assistant messages carry tool_calls", provider=provider)
        calls = tuple(_tool_call(c, f"{where}.tool_calls[{i}]", provider) for i, c in enumerate(tool_calls))
    if role == "tool":
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise InvalidRequestError(
                f"{where}: a tool message needs tool_call_id, the id of the call it answers",
                provider=provider,
            )
        check_text(tool_call_id, f"{where}.tool_call_id", provider)
    elif tool_call_id is not None:
        raise InvalidRequestError(f"{where}: only tool messages carry tool_call_id", provider=provider)
    if not isinstance(is_error, bool):
        raise InvalidRequestError(f"{where}: is_error must be True or False, got {type(is_error).__name__}",
                                  provider=provider)
    if is_error and role != "tool":
        raise InvalidRequestError(f"{where}: only tool messages carry is_error (a failed tool call's result)",
                                  provider=provider)
    if content is None and not calls and role != "assistant":
        raise InvalidRequestError(f"{where}: content is missing", provider=provider)
    blocks = tuple(_reasoning(b, f"{where}.reasoning", provider) for b in reasoning) if reasoning else ()
    return Message(role=role, content=content, name=name, tool_calls=calls, tool_call_id=tool_call_id,
                   reasoning=blocks, is_error=is_error)


def _content(content: Any, where: str, provider: str) -> str | list[ContentPart] | None:
    if content is None:
        return content
    if isinstance(content, str):
        check_text(content, f"{where}.content", provider)
        return content
    if not isinstance(content, (list, tuple)):
        raise InvalidRequestError(
            f"{where}: content must be a string or a list of parts, got {type(content).__name__}",
            provider=provider,
        )
    parts: list[ContentPart] = []
    for i, part in enumerate(content):
        at = f"{where}.content[{i}]"
        if isinstance(part, str):
            check_text(part, at, provider)
            parts.append({"type": "text", "text": part})
            continue
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            check_text(part["text"], f"{at}.text", provider)
            out: ContentPart = {"type": "text", "text": part["text"]}
        elif kind == "image_url":
            out = {"type": "image_url", "image_url": _image(part.get("image_url"), at, provider)}
        elif kind == "file":
            out = {"type": "file", "file": _file(part.get("file"), at, provider)}
        else:
            raise InvalidRequestError(
                f"{at}: unsupported part {str(kind)[:40]!r}; use 'text', 'image_url' or 'file' parts",
                provider=provider,
            )
        extra = set(part) - {"type", kind, "cache_control"}
        if extra:
            raise InvalidRequestError(f"{at}: unknown keys {sorted(map(str, extra))} in a {kind!r} part",
                                      provider=provider)
        if "cache_control" in part:
            out["cache_control"] = check_cache_control(part["cache_control"], f"{at}.cache_control", provider)
        parts.append(out)
    return parts


def _image(image: Any, at: str, provider: str) -> dict[str, Any]:
    if isinstance(image, str):
        image = {"url": image}
    if not isinstance(image, Mapping) or not isinstance(image.get("url"), str) or not image["url"]:
        raise InvalidRequestError(
            f"{at}: image parts look like "
            "{'type': 'image_url', 'image_url': {'url': 'https://... or data:image/png;base64,...'}}",
            provider=provider,
        )
    url = _check_image_url(image["url"], at, provider)
    check_json_value(image, f"{at}.image_url", provider)
    return {**image, "url": url}


def _file(file: Any, at: str, provider: str) -> dict[str, Any]:
    """A document: ``{"file_data": "data:application/pdf;base64,...", "filename": ...}``, ``{"url": ...}``
    or ``{"file_id": ...}`` (the OpenAI part shape, mapped by each connector)."""
    shape = ("document parts look like {'type': 'file', 'file': {'file_data': 'data:application/pdf;base64,...', "
             "'filename': 'report.pdf'}} (or 'url': 'https://...' or 'file_id': '...' instead of 'file_data')")
    if not isinstance(file, Mapping):
        raise InvalidRequestError(f"{at}: {shape}", provider=provider)
    unknown = set(file) - {"file_data", "url", "file_id", "filename"}
    sources = [key for key in ("file_data", "url", "file_id") if file.get(key) is not None]
    if unknown or len(sources) != 1:
        raise InvalidRequestError(f"{at}: give exactly one of file_data, url, file_id; {shape}", provider=provider)
    for key, value in file.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidRequestError(f"{at}.file.{key} must be a non-empty string", provider=provider)
        if isinstance(value, str):
            check_text(value, f"{at}.file.{key}", provider)
    if "url" in sources and not file["url"].startswith(("http://", "https://")):
        raise InvalidRequestError(f"{at}.file.url must be an http(s) URL; put a data: URL in file_data",
                                  provider=provider)
    if "file_data" in sources:
        _check_document_data(file["file_data"], at, provider)
    return {key: value for key, value in file.items() if value is not None}


def _check_document_data(url: str, at: str, provider: str) -> None:
    data = parse_data_url(url)
    if data is None:
        raise InvalidRequestError(f"{at}.file.file_data must be a data: URL, like data:application/pdf;base64,...",
                                  provider=provider)
    media_type = data.media_type.strip().lower()
    if media_type not in _DOCUMENT_TYPES:
        raise InvalidRequestError(f"{at}: a document of type {media_type[:40]!r} is not supported; use "
                                  f"{' or '.join(_DOCUMENT_TYPES)}", provider=provider)
    _check_base64(data, at, provider)


def _check_image_url(url: str, where: str, provider: str) -> str:
    """An http(s) URL, or a ``data:`` URL of an image whose data decodes (checked now, not by the provider).
    A percent-encoded data URL (RFC 2397 allows one) comes back as base64, the form every provider takes."""
    if url.startswith(("http://", "https://")):
        check_text(url, f"{where} url", provider)
        return url
    data = parse_data_url(url)
    if data is None:
        raise InvalidRequestError(f"{where}: image url must be http(s) or a data: URL", provider=provider)
    media_type = data.media_type.strip().lower()
    if not media_type.startswith("image/"):
        raise InvalidRequestError(f"{where}: an image data: URL names its image type, like "
                                  f"data:image/png;base64,... (or jpeg, gif, webp); got {url[:40]!r}...",
                                  provider=provider)
    _check_base64(data, where, provider)
    return url if data.is_base64 else f"data:{media_type};base64,{data.base64_data()}"


def _check_base64(data: DataURL, where: str, provider: str) -> None:
    if not data.data.strip():
        raise InvalidRequestError(f"{where}: the data: URL holds no data", provider=provider)
    try:
        data.base64_data()
    except ValueError:
        raise InvalidRequestError(f"{where}: the data: URL's data is not valid base64", provider=provider) from None


def _tool_call(call: Any, where: str, provider: str) -> ToolCall:
    if isinstance(call, ToolCall):
        if not isinstance(call.id, str) or not isinstance(call.name, str):
            raise InvalidRequestError(f"{where}: a tool call needs a string 'id' and 'name'", provider=provider)
        check_text(call.id, f"{where}.id", provider)
        check_text(call.name, f"{where}.name", provider)
        check_json_value(call.arguments, f"{where}.arguments", provider)
        return call
    if not isinstance(call, Mapping):
        raise InvalidRequestError(f"{where}: must be a ToolCall or a dict", provider=provider)
    call_id = call.get("id")
    function = call.get("function")
    if isinstance(function, Mapping):  # the OpenAI wire shape
        name, arguments = function.get("name"), function.get("arguments")
    else:
        name, arguments = call.get("name"), call.get("arguments")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise InvalidRequestError(f"{where}: a tool call needs a string 'id' and 'name'", provider=provider)
    check_text(call_id, f"{where}.id", provider)
    check_text(name, f"{where}.name", provider)
    if arguments is None:
        return ToolCall(id=call_id, name=name, arguments={})
    if isinstance(arguments, str):
        parsed = ToolCall.from_json_text(call_id, name, arguments)
        if parsed.parse_error:
            raise InvalidRequestError(f"{where}: arguments are not a JSON object: {parsed.parse_error}",
                                      provider=provider)
        return parsed
    if isinstance(arguments, Mapping):
        check_json_value(arguments, f"{where}.arguments", provider)
        return ToolCall(id=call_id, name=name, arguments=dict(arguments))
    raise InvalidRequestError(f"{where}: arguments must be a dict or JSON text", provider=provider)


def _reasoning(block: Any, where: str, provider: str) -> ReasoningBlock:
    if isinstance(block, ReasoningBlock):
        return block
    if isinstance(block, Mapping):
        text, signature, redacted = block.get("text", ""), block.get("signature"), block.get("redacted_data")
        origin = block.get("provider")
        if not isinstance(text, str) or not all(v is None or isinstance(v, str)
                                                for v in (signature, redacted, origin)):
            raise InvalidRequestError(f"{where}: text, signature, redacted_data and provider must be strings",
                                      provider=provider)
        return ReasoningBlock(text=text, signature=signature, redacted_data=redacted, provider=origin)
    raise InvalidRequestError(f"{where}: reasoning blocks must be dicts or ReasoningBlock", provider=provider)


def has_parts(messages: Iterable[Message], kind: str) -> bool:
    """Whether any message carries a content part of this type (``image_url``, ``file``)."""
    for message in messages:
        content = message.content
        if isinstance(content, list) and any(p.get("type") == kind for p in content):
            return True
    return False


def has_images(messages: Iterable[Message]) -> bool:
    return has_parts(messages, "image_url")


def text_of(content: str | list[ContentPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p["text"] for p in content if p.get("type") == "text")


def tool_result_text(content: str | list[ContentPart] | None) -> str:
    """Tool results as text (providers that only take strings)."""
    if content is None or isinstance(content, str):
        return content or ""
    if all(p.get("type") == "text" for p in content):
        return text_of(content)
    return json.dumps(content)
