"""The oracle's reading of an answer, mutated or not: which successes a connector may return.

:func:`allowed` says which results a call may honestly *succeed* with — the text, the vectors or
the model ids the provider actually sent. It is deliberately small and strict: a field the
connector reads holding a value of the wrong type allows no success (the connector must raise a
``ProtocolError``). Fields the connectors do not read (ids, timestamps, ``object``...) never change
what it allows.

Empty answers follow the library's rule: *a stream that ends with no content, no tool call and no
documented empty-answer reason is an error, not an empty success* — and the same for a
non-streamed answer. The reason is the provider's own field: OpenAI's and Mistral's
``finish_reason``, Claude's ``stop_reason`` (``message_start`` / ``message_delta`` in a stream),
Ollama's ``done_reason`` on the ``done: true`` line, MegaChat's ``stop``. With it, ``""`` is a valid
success (``max_tokens``, ``length``, a filtered answer...); without it, ``""`` would be made up.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from harness_templates import EMBED_INPUTS, NOT_JSON, Answer, Event, Raw, Template, dumps

__all__ = ["Allowed", "Invalid", "allowed", "materialize", "reads"]


class Invalid(Exception):
    """The answer has a field we read with the wrong type: no success is allowed."""


def materialize(value: Any) -> Any:
    """``value`` with each :class:`Raw` token replaced by what it decodes to; :class:`Invalid` if one is
    not JSON (a body or an event that is not JSON allows no success, whatever else it holds)."""
    if isinstance(value, Raw):
        if value.value is NOT_JSON:
            raise Invalid("not JSON")
        return value.value
    if isinstance(value, Event):
        if value.raw or value.comment:
            return value
        try:
            return replace(value, data=materialize(value.data))
        except Invalid:  # an event that is not JSON: its reader decides whether that event matters
            return replace(value, data=dumps(value.data), raw=True)
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v) for v in value]
    return value


_MISSING = object()


def _get(obj: Any, key: str | int, *, nullable: bool = True) -> Any:
    """``obj[key]``, or ``_MISSING``; a container of the wrong type is :class:`Invalid`."""
    if isinstance(key, int):
        if not isinstance(obj, list):
            raise Invalid(f"expected a list, got {type(obj).__name__}")
        return obj[key] if -len(obj) <= key < len(obj) else _MISSING
    if not isinstance(obj, dict):
        raise Invalid(f"expected an object, got {type(obj).__name__}")
    value = obj.get(key, _MISSING)
    if value is None and not nullable:
        raise Invalid(f"{key} is null")
    return value


def _text(value: Any, *, nullable: bool) -> str:
    """A text field: a str; missing is ""; null is "" where the provider documents it, else invalid."""
    if value is _MISSING or (value is None and nullable):
        return ""
    if not isinstance(value, str):
        raise Invalid(f"text is {type(value).__name__}")
    return value


def _reason(value: Any, *, empty_counts: bool = False) -> bool:
    """A finish/stop reason field (``str | null``, as every connector declares it): whether it gives one."""
    if value is _MISSING or value is None:
        return False
    if not isinstance(value, str):
        raise Invalid(f"finish reason is {type(value).__name__}")
    return empty_counts or value != ""


#: What a chat reader gives: the text, and whether a documented empty-answer reason came with it.
Reading = tuple[str, bool]


def _openai_content(value: Any) -> str:
    """Message or delta content: text, null, or (Mistral) a list of content parts, whose text parts count."""
    if not isinstance(value, list):
        return _text(value, nullable=True)
    text = []
    for part in value:
        kind = _get(part, "type")
        if kind not in (_MISSING, None) and not isinstance(kind, str):
            raise Invalid("content part type")
        if kind == "text":
            text.append(_text(_get(part, "text"), nullable=True))
    return "".join(text)


def _first_choice(choices: Any) -> Any:
    """The choice asked for: the first with ``index`` 0, null or absent (a server that ignored ``n`` may send
    others, whose text is another answer's); ``_MISSING`` if none. Every index must be a count."""
    if not isinstance(choices, list):
        raise Invalid("choices is not a list")
    picked = _MISSING
    for choice in choices:
        index = _get(choice, "index")
        if index not in (_MISSING, None) and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise Invalid("choice index")
        if picked is _MISSING and index in (_MISSING, None, 0):
            picked = choice
    return picked


def _chat_openai(body: Any) -> Reading:
    choice = _first_choice(_get(body, "choices", nullable=False))
    if choice is _MISSING:
        raise Invalid("no choice with index 0")
    message = _get(choice, "message", nullable=False)
    reason = _reason(_get(choice, "finish_reason"))
    if message is _MISSING:
        return "", reason
    text = _openai_content(_get(message, "content"))
    refusal = _get(message, "refusal")
    if refusal not in (_MISSING, None) and not isinstance(refusal, str):
        raise Invalid("refusal")
    if not text and isinstance(refusal, str) and refusal:
        return refusal, True  # what OpenAI sends instead of content when the model refuses
    return text, reason


def _stream_openai(events: list[Event]) -> Reading:
    text, reason = [], False
    for event in events:
        if event.comment:
            continue
        if event.raw:
            if event.data.startswith("[DONE]"):
                break
            raise Invalid("a non-JSON data line")
        choices = _get(event.data, "choices")
        if choices in (_MISSING, None) or choices == []:
            continue
        choice = _first_choice(choices)
        if choice is _MISSING:
            continue  # another choice's chunk
        reason = _reason(_get(choice, "finish_reason")) or reason
        delta = _get(choice, "delta")
        if delta in (_MISSING, None):
            continue
        text.append(_openai_content(_get(delta, "content")))
    return "".join(text), reason


def _chat_claude(body: Any) -> Reading:
    blocks = _get(body, "content", nullable=False)
    if blocks is _MISSING or not isinstance(blocks, list):
        raise Invalid("content is not a list")
    text = []
    for block in blocks:
        kind = _get(block, "type", nullable=False)
        if not isinstance(kind, str):
            raise Invalid("block type")
        if kind == "text":
            text.append(_text(_get(block, "text", nullable=False), nullable=False))
    return "".join(text), _reason(_get(body, "stop_reason"), empty_counts=True)


def _stream_claude(events: list[Event]) -> Reading:
    """Text from text blocks as they start and from their ``text_delta``s; the stop reason as
    ``message_start`` and then each ``message_delta`` leave it (a later one overwrites)."""
    text: list[str] = []
    stop: Any = None
    for event in events:
        if event.comment:
            continue
        if event.raw:
            if not event.data.strip():
                continue  # a blank data line is no event
            raise Invalid("a non-JSON data line")
        kind = _get(event.data, "type", nullable=False)
        if not isinstance(kind, str):
            raise Invalid("event type")
        if kind == "message_stop":
            break
        if kind == "message_start":
            stop = _get(_get(event.data, "message", nullable=False), "stop_reason")
        elif kind == "message_delta":
            delta = _get(event.data, "delta", nullable=False)
            if isinstance(delta, dict) and "stop_reason" in delta:
                stop = delta["stop_reason"]
        elif kind == "content_block_start":
            block = _get(event.data, "content_block", nullable=False)
            if _get(block, "type") == "text":
                text.append(_text(_get(block, "text", nullable=False), nullable=False))
        elif kind == "content_block_delta":
            delta = _get(event.data, "delta", nullable=False)
            delta_kind = _get(delta, "type", nullable=False)
            if not isinstance(delta_kind, str):
                raise Invalid("delta type")
            if delta_kind == "text_delta":
                text.append(_text(_get(delta, "text", nullable=False), nullable=False))
        _reason(stop)  # a stop reason of the wrong type is refused where it arrives
    return "".join(text), _reason(stop, empty_counts=True)


def _chat_ollama(body: Any) -> Reading:
    message = _get(body, "message", nullable=False)
    text = "" if message is _MISSING else _text(_get(message, "content"), nullable=True)
    return text, _get(body, "done") is True and _reason(_get(body, "done_reason"))


def _stream_ollama(events: list[Event]) -> Reading:
    text, reason = [], False
    for event in events:
        if event.raw:
            raise Invalid("a non-JSON line")
        message = _get(event.data, "message", nullable=False)
        if message is not _MISSING:
            text.append(_text(_get(message, "content"), nullable=True))
        if _get(event.data, "done") is True:
            reason = _reason(_get(event.data, "done_reason"))
            break
    return "".join(text), reason


def _chat_sample(body: Any) -> Reading:
    output = _get(body, "output", nullable=False)
    text = "" if output is _MISSING else _text(_get(output, "text"), nullable=True)
    return text, _reason(_get(body, "stop"))


def _stream_sample(events: list[Event]) -> Reading:
    text = []
    for event in events:
        if event.comment:
            continue
        if event.name == "end":
            return "".join(text), not event.raw and _reason(_get(event.data, "stop"))
        if event.name == "text":
            if event.raw:
                raise Invalid("a non-JSON text event")
            text.append(_text(_get(event.data, "text"), nullable=False))
    return "".join(text), False


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid("vector element is not a finite number")
    return float(value)


def _vector(value: Any) -> list[float]:
    if isinstance(value, str):  # OpenAI's base64 float32 form
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Invalid("bad base64 vector") from exc
        if not raw or len(raw) % 4:
            raise Invalid("bad base64 vector length")
        return [_number(x) for x in struct.unpack(f"<{len(raw) // 4}f", raw)]
    if not isinstance(value, list) or not value:
        raise Invalid("vector is not a non-empty list")
    return [_number(x) for x in value]


def _ordered(items: list[Any], key: str) -> list[Any]:
    """Items in ``key`` order. Where some items have no index, each indexed item takes its place and the
    others fill the free places as sent (the one order consistent with what the provider said)."""
    indices = [_get(item, key) for item in items]
    present = [i for i in indices if i is not _MISSING]
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in present) \
            or len(set(present)) != len(present):
        raise Invalid("bad index")
    pairs = list(zip(indices, items, strict=True))
    if len(present) == len(items):
        return [item for _, item in sorted(pairs, key=lambda pair: pair[0])]
    if any(i >= len(items) for i in present):
        raise Invalid("index out of range")
    slots: list[Any] = [_MISSING] * len(items)
    for index, item in pairs:
        if index is not _MISSING:
            slots[index] = item
    unplaced = iter(item for index, item in pairs if index is _MISSING)
    return [next(unplaced) if slot is _MISSING else slot for slot in slots]


def _embeddings_openai(body: Any) -> list[list[float]]:
    items = _get(body, "data", nullable=False)
    if not isinstance(items, list):
        raise Invalid("data")
    return [_vector(_get(item, "embedding")) for item in _ordered(items, "index")]


def _embeddings_ollama(body: Any) -> list[list[float]]:
    vectors = _get(body, "embeddings", nullable=False)
    if not isinstance(vectors, list):
        raise Invalid("embeddings")
    return [_vector(v) for v in vectors]


def _embeddings_sample(body: Any) -> list[list[float]]:
    items = _get(body, "vectors", nullable=False)
    if not isinstance(items, list):
        raise Invalid("vectors")
    return [_vector(_get(item, "values")) for item in _ordered(items, "position")]


def _ids(items: Any, *keys: str) -> list[str]:
    """The first str among ``keys`` of each entry; entries without one may be dropped."""
    if not isinstance(items, list):
        raise Invalid("model list")
    out = []
    for item in items:
        for key in keys:
            value = _get(item, key)
            if isinstance(value, str) and value:
                out.append(value)
                break
    return out


def _models(container: str, *keys: str) -> Callable[[Any], list[str]]:
    return lambda body: _ids(_get(body, container, nullable=False), *keys)


_READERS: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("openai", "chat"): _chat_openai, ("mistral", "chat"): _chat_openai,
    ("openai", "stream"): _stream_openai, ("mistral", "stream"): _stream_openai,
    ("claude", "chat"): _chat_claude, ("claude", "stream"): _stream_claude,
    ("ollama", "chat"): _chat_ollama, ("ollama", "stream"): _stream_ollama,
    ("sample", "chat"): _chat_sample, ("sample", "stream"): _stream_sample,
    ("openai", "embeddings"): _embeddings_openai, ("mistral", "embeddings"): _embeddings_openai,
    ("ollama", "embeddings"): _embeddings_ollama, ("sample", "embeddings"): _embeddings_sample,
    ("openai", "models"): _models("data", "id"), ("mistral", "models"): _models("data", "id"),
    ("claude", "models"): _models("data", "id"), ("ollama", "models"): _models("models", "model", "name"),
    ("sample", "models"): _models("models", "name"),
}


def _pages_continue(template: Template, body: Any) -> bool:
    """Whether the answer asks for another page (the server then serves the same page again)."""
    if not isinstance(body, dict):
        return False
    if template.provider == "claude":
        return body.get("has_more") not in (None, False, _MISSING)
    if template.provider == "sample":
        return body.get("next_cursor") not in (None, "")
    return False


@dataclass
class Allowed:
    """The successes an answer allows: ``values`` exactly (empty: the call must fail).

    ``repeats``: a paged model list that never ends may come back as the page repeated.
    ``why``: when nothing is allowed, the reason (for failure messages).
    """

    values: list[Any] = field(default_factory=list)
    repeats: bool = False
    why: str = ""

    def accepts(self, value: Any) -> bool:
        if value in self.values:
            return True
        if self.repeats and isinstance(value, list):
            for page in self.values:
                if page and len(value) % len(page) == 0 and value == page * (len(value) // len(page)):
                    return True
        return False


def reads(template: Template, answer: Answer) -> Any:
    """What the provider sent, as the oracle reads it (for a chat: the text only); raises :class:`Invalid`."""
    value = _READERS[(template.provider, template.mode)](answer)
    return value[0] if template.mode in ("chat", "stream") else value


def allowed(template: Template, answer: Answer) -> Allowed:
    """The successes ``answer`` allows. When its bytes are then cut, the uncut answer is the one to
    pass: a cut answer may only succeed with everything (a cut stream is never a shorter success)."""
    try:
        value = _READERS[(template.provider, template.mode)](materialize(answer))
    except Invalid as exc:
        return Allowed(why=f"a field the connector reads is malformed ({exc})")
    except (IndexError, KeyError, TypeError) as exc:  # pragma: no cover - a reader bug, not a finding
        raise AssertionError(f"oracle reader failed on {template.id}: {exc!r}") from exc
    if template.mode in ("chat", "stream"):
        value, reason = value
        if value == "" and not reason:
            return Allowed(why="the answer carries no text, no tool call and no documented empty-answer reason")
    if template.mode == "embeddings" and len(value) != len(EMBED_INPUTS):
        return Allowed(why=f"{len(value)} vectors for {len(EMBED_INPUTS)} inputs")
    values = [value]
    if isinstance(value, str) and value != _replace_surrogates(value):
        values.append(_replace_surrogates(value))  # a lone surrogate may come back as U+FFFD: still what was sent
    return Allowed(values, repeats=_pages_continue(template, answer) if template.mode == "models" else False)


def _replace_surrogates(text: str) -> str:
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
