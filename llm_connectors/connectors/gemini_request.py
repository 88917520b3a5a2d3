"""Writing Gemini's requests: the ``generateContent`` body, as pure functions.

The conversation becomes ``contents`` (roles ``user`` and ``model``) and ``systemInstruction``
(system and developer messages); images and documents are ``inlineData`` (data URLs) or
``fileData`` (URLs, Files API ids); tools are ``functionDeclarations``; a tool result is a
``functionResponse`` part naming its function, looked up from the assistant call it answers.
Sampling options live in ``generationConfig``. Field names are those the official SDK
(google-genai 3.6.1) sends. ``cache_control`` markers on parts have no Gemini meaning and are
dropped. Schemas are sent as ``parametersJsonSchema`` / ``responseJsonSchema``: those take full
JSON Schema, where ``parameters`` / ``responseSchema`` take only the OpenAPI subset and would
refuse common schemas (``additionalProperties``, ``$defs``).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidRequestError
from ..requests import ChatRequest
from ..types import ContentPart, Message
from ..wire.data_urls import parse_data_url
from ..wire.messages import tool_result_text

__all__ = ["THINKING_BUDGETS", "chat_body", "thinking_config", "translate_messages"]

_CONFIG_KEYS = {"temperature": "temperature", "top_p": "topP", "top_k": "topK", "max_tokens": "maxOutputTokens",
                "stop": "stopSequences", "seed": "seed", "presence_penalty": "presencePenalty",
                "frequency_penalty": "frequencyPenalty", "candidate_count": "candidateCount"}
#: Gemini 2.x models take a token budget (0 turns thinking off); later models a level (the SDK's
#: ThinkingLevel: MINIMAL, LOW, MEDIUM, HIGH, XHIGH), where MINIMAL is the closest to "none".
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}
_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def thinking_config(model: str, effort: str) -> dict[str, Any]:
    """``generationConfig.thinkingConfig`` for a ``reasoning_effort``; thoughts are asked for unless off."""
    if model.removeprefix("models/").startswith("gemini-2"):
        config: dict[str, Any] = {"thinkingBudget": THINKING_BUDGETS[effort]}
    else:
        config = {"thinkingLevel": "MINIMAL" if effort == "none" else effort.upper()}
    if effort != "none":
        config["includeThoughts"] = True
    return config


def chat_body(request: ChatRequest, provider: str) -> dict[str, Any]:
    """The JSON body of ``models/{model}:generateContent`` (and ``:streamGenerateContent``)."""
    system, contents = translate_messages(request.messages, provider)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system, "role": "user"}  # the role google-genai 3.6.1 sends
    config: dict[str, Any] = {}
    for name, value in request.params.items():
        if name == "tools":
            body["tools"] = [{"functionDeclarations": [_declaration(t["function"]) for t in value]}]
        elif name == "tool_choice":
            body["toolConfig"] = {"functionCallingConfig": _calling_config(value)}
        elif name == "reasoning_effort":
            config["thinkingConfig"] = thinking_config(request.model, value)
        elif name == "response_format":
            if value["type"] == "json_object":
                config["responseMimeType"] = "application/json"
            elif value["type"] == "json_schema":
                config["responseMimeType"] = "application/json"
                config["responseJsonSchema"] = value["json_schema"]["schema"]
        elif name in _CONFIG_KEYS:
            config[_CONFIG_KEYS[name]] = list(value) if name == "stop" else value
        else:  # a declared option under its own (camelCase) name
            config[name] = value
    if config:
        body["generationConfig"] = config
    return body


def _declaration(function: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parametersJsonSchema"] = function["parameters"]
    return out


def _calling_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str):
        return {"mode": _MODES[choice]}
    return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}


# -- the messages -------------------------------------------------------------------------------

def translate_messages(messages: Sequence[Message], provider: str
                       ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(systemInstruction parts, contents)``; turns of the same role are merged, as Gemini wants."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if message.role in ("system", "developer"):
            system.extend(_parts(message.content, where, provider))
            continue
        for call in message.tool_calls:
            names[call.id] = call.name
        if message.role == "tool":
            role, parts = "user", [_function_response(message, names, where, provider)]
        elif message.role == "assistant":
            role, parts = "model", [*_parts(message.content, where, provider), *_calls(message, provider)]
        else:
            role, parts = "user", _parts(message.content, where, provider)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _calls(message: Message, provider: str) -> list[dict[str, Any]]:
    # Gemini 3 wants the thought signature of a turn's first function call back on that call.
    signatures = [b.signature for b in message.reasoning
                  if b.signature and b.provider in (None, provider) and not b.text]
    out = []
    for position, call in enumerate(message.tool_calls):
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": dict(call.arguments)}}
        if position == 0 and signatures:
            part["thoughtSignature"] = signatures[0]
        out.append(part)
    return out


def _function_response(message: Message, names: Mapping[str, str], where: str, provider: str) -> dict[str, Any]:
    call_id = message.tool_call_id or ""
    name = names.get(call_id) or message.name
    if not name:
        raise InvalidRequestError(
            f"{where}: the tool result answers tool_call_id {call_id!r}, but no earlier assistant message "
            "has a call with that id; Gemini needs the function's name (pass name='<tool name>' on the "
            "tool message)", provider=provider)
    text = tool_result_text(message.content)
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    # `response` must be an object; the SDK's docs name `output` as the key for a plain result.
    response = value if isinstance(value, dict) else {"output": text}
    return {"functionResponse": {"name": name, "response": response}}


def _parts(content: str | list[ContentPart] | None, where: str, provider: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out: list[dict[str, Any]] = []
    for i, part in enumerate(content):  # cache_control markers are dropped: Gemini has none
        kind = part.get("type")
        if kind == "text":
            if part["text"]:
                out.append({"text": part["text"]})
        elif kind == "image_url":
            url = part["image_url"]["url"]
            out.append(_media(url, mimetypes.guess_type(url)[0], f"{where}.content[{i}]", provider))
        elif kind == "file":
            file = part["file"]
            url = file.get("file_id") or file.get("url") or str(file.get("file_data") or "")
            guess = mimetypes.guess_type(str(file.get("filename") or file.get("url") or ""))[0]
            out.append(_media(url, guess, f"{where}.content[{i}]", provider))
    return out


def _media(url: str, mime_type: str | None, where: str, provider: str) -> dict[str, Any]:
    """A data URL becomes ``inlineData``; a URL or Files API name ``fileData``."""
    data = parse_data_url(url)
    if data is None:
        if not url:
            raise InvalidRequestError(f"{where}: the file part has no file_data, url or file_id", provider=provider)
        file_data: dict[str, Any] = {"fileUri": url}
        if mime_type:
            file_data["mimeType"] = mime_type
        return {"fileData": file_data}
    media_type = data.media_type.strip().lower()
    if not media_type:
        raise InvalidRequestError(f"{where}: the data URL names no media type (e.g. 'data:image/png;base64,...')",
                                  provider=provider)
    try:
        payload = data.base64_data()
    except ValueError:
        raise InvalidRequestError(f"{where}: the data URL is not valid base64", provider=provider) from None
    if not payload.strip():
        raise InvalidRequestError(f"{where}: the data URL has no data", provider=provider)
    return {"inlineData": {"mimeType": media_type, "data": payload}}
