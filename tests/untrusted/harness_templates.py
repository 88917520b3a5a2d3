"""Valid provider answers, and how they travel as bytes.

A :class:`Template` is one valid answer of one provider in one mode (``chat``, ``stream``,
``embeddings``, ``models``), built with the provider's wire kit (``llm_connectors.testing.*_wire``)
or read from a recorded fixture (``tests/fixtures/``). Its :class:`Answer` is the JSON body, or
the list of stream events, that mutations change; :func:`render` turns an answer into the bytes
the harness server sends. What a caller may get from an answer is :mod:`harness_readers`' part.

The models the templates are called with are picked when the module loads: the first of a few
priced ones the connector accepts before any I/O without a deprecation warning (the model catalog
retires models as time passes), so a success also runs the cost estimate.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from builders import build_connector

from llm_connectors.errors import LLMConnectorError
from llm_connectors.pricing import estimate_cost
from llm_connectors.testing.claude_wire import ClaudeWireKit, claude_message_json, claude_sse_events
from llm_connectors.testing.mistral_wire import MistralWireKit, mistral_chat_json, mistral_sse_events
from llm_connectors.testing.ollama_wire import OllamaWireKit, ollama_chat_json, ollama_chat_lines
from llm_connectors.testing.openai_wire import OpenAIWireKit, openai_chat_json, openai_sse_events
from llm_connectors.testing.sample_wire import SampleWireKit, megachat_answer, megachat_stream
from llm_connectors.types import Usage

__all__ = [
    "CHAT_MODELS", "EMBED_INPUTS", "EMBED_MODELS", "MODES", "NOT_JSON", "PROVIDERS", "TEXT", "Answer", "Event",
    "Raw", "Template", "chat_template", "dumps", "render", "templates",
]

Mode = Literal["chat", "stream", "embeddings", "models"]
PROVIDERS = ("openai", "mistral", "claude", "ollama", "sample")
MODES: tuple[Mode, ...] = ("chat", "stream", "embeddings", "models")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

#: What each template answers: several words, a non-ASCII letter, so a cut can land mid-character.
TEXT_DELTAS = ("Héllo", " from", " the", " harness", " ✓")
TEXT = "".join(TEXT_DELTAS)
VECTORS = ([0.25, -0.5, 0.125], [1.0, 0.0, -0.75])
EMBED_INPUTS = ("first text", "second text")
MODEL_IDS = ("model-a", "model-b")
#: Candidate models, best first: priced ones (so a success also runs the cost estimate), then a name no
#: catalog knows (which every connector takes with its generic rules).
_CHAT_CANDIDATES = {
    "openai": ("gpt-5.4-mini", "gpt-5.4", "gpt-5.5", "gpt-4o-mini"),
    "mistral": ("mistral-small-latest", "mistral-large-latest", "mistral-medium-latest"),
    "claude": ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-8", "claude-sonnet-5-5", "claude-sonnet-4-5"),
    "ollama": ("llama3.2",),
    "sample": ("megachat-large",),
}
_EMBED_CANDIDATES = {"openai": ("text-embedding-3-small", "text-embedding-3-large"), "mistral": ("mistral-embed",),
                     "ollama": ("nomic-embed-text",), "sample": ("megachat-embed",)}
_UNKNOWN_MODEL = "harness-model"


def _accepted(provider: str, mode: str, candidates: Sequence[str]) -> str:
    """The first candidate the connector takes before any I/O without a warning (a deprecated model warns,
    and warnings are errors in this suite), priced ones first."""
    connector = build_connector(provider)  # never sends: only the pre-I/O checks run
    usable = []
    for model in (*candidates, _UNKNOWN_MODEL):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                if mode == "embeddings":
                    connector.prepare_embedding(model, ["x"], {})
                else:
                    connector.prepare_chat(model, "hi", {}, stream=False)
            except (LLMConnectorError, Warning):
                continue
        usable.append(model)
    priced = [m for m in usable if estimate_cost(provider, m, Usage(input_tokens=1, output_tokens=1)) is not None]
    return (priced or usable or [_UNKNOWN_MODEL])[0]


CHAT_MODELS = {provider: _accepted(provider, "chat", names) for provider, names in _CHAT_CANDIDATES.items()}
EMBED_MODELS = {provider: _accepted(provider, "embeddings", names) for provider, names in _EMBED_CANDIDATES.items()}
STREAM_TYPES = {"openai": "text/event-stream", "mistral": "text/event-stream", "claude": "text/event-stream",
                "ollama": "application/x-ndjson", "sample": "text/event-stream"}


#: The :attr:`Raw.value` of a token that is not JSON at all.
NOT_JSON = "<not JSON>"


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (``NaN``, ``1e999``, a 5000-digit number, a bad escape...).

    ``value`` is what a decoder that takes it makes of it (:data:`NOT_JSON`: nothing should).
    """

    text: str
    value: Any = NOT_JSON

    @classmethod
    def of(cls, text: str) -> Raw:
        """The token ``text``, its value as Python's decoder reads it (non-standard ``NaN`` too)."""
        try:
            return cls(text, json.loads(text))
        except (ValueError, RecursionError):
            return cls(text)


@dataclass(frozen=True)
class Event:
    """One stream event: ``data`` is decoded JSON, or the raw text of a non-JSON data line
    (``[DONE]``) when ``raw``; a ``comment`` is a ``: ...`` line (its text in ``data``)."""

    data: Any
    name: str | None = None
    raw: bool = False
    comment: bool = False


#: A JSON body (``chat``, ``embeddings``, ``models``) or the list of events of a stream.
Answer = Any


@dataclass(frozen=True)
class Template:
    provider: str
    mode: Mode
    answer: Answer
    source: str = "kit"
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.mode}" + ("" if self.source == "kit" else f"-{self.source}")

    @property
    def framing(self) -> Literal["json", "sse", "ndjson"]:
        if self.mode != "stream":
            return "json"
        return "ndjson" if self.provider == "ollama" else "sse"

    @property
    def content_type(self) -> str:
        return STREAM_TYPES[self.provider] if self.mode == "stream" else "application/json"

    @property
    def model(self) -> str | None:
        return (EMBED_MODELS if self.mode == "embeddings" else CHAT_MODELS).get(self.provider)

    def fresh(self) -> Answer:
        """A deep copy of the answer, safe to mutate."""
        return copy.deepcopy(self.answer)

    def with_answer(self, answer: Answer) -> Template:
        return replace(self, answer=answer)


# -- building templates ----------------------------------------------------------------------------------

def _sse_events(raw: Sequence[bytes]) -> list[Event]:
    """Our structured events from SSE bytes (the kits' and the fixtures' events are simple)."""
    text = b"".join(raw).decode().replace("\r\n", "\n")
    events: list[Event] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith(":"):
                events.append(Event(line[1:].strip(), comment=True))
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            joined = "\n".join(data)
            try:
                events.append(Event(json.loads(joined), name))
            except ValueError:
                events.append(Event(joined, name, raw=True))
    return events


def _ndjson_events(raw: Sequence[bytes]) -> list[Event]:
    return [Event(json.loads(line)) for line in b"".join(raw).splitlines() if line.strip()]


#: Each provider's finish/stop reason keyword in its kit, and the reason a valid answer carries.
_REASONS = {"openai": ("finish_reason", "stop"), "mistral": ("finish_reason", "stop"),
            "claude": ("stop_reason", "end_turn"), "ollama": ("done_reason", "stop"), "sample": ("stop", "done")}
_DEFAULT = object()


def chat_template(provider: str, mode: Mode, deltas: Sequence[str] = TEXT_DELTAS, *,
                  reason: str | object | None = _DEFAULT) -> Template:
    """A valid chat or stream answer of ``provider`` whose text is ``"".join(deltas)``, built by its kit;
    ``reason`` replaces the finish/stop reason (``None``: the field is null)."""
    keyword, default = _REASONS[provider]
    options = {"model": CHAT_MODELS[provider], keyword: default if reason is _DEFAULT else reason}
    text, parts = "".join(deltas), list(deltas)
    build: dict[tuple[str, str], Any] = {
        ("openai", "chat"): lambda: openai_chat_json(text, **options),
        ("openai", "stream"): lambda: _sse_events(openai_sse_events(parts, **options)),
        ("mistral", "chat"): lambda: mistral_chat_json(text, **options),
        ("mistral", "stream"): lambda: _sse_events(mistral_sse_events(parts, **options)),
        ("claude", "chat"): lambda: claude_message_json(text, **options),
        ("claude", "stream"): lambda: _sse_events(claude_sse_events(parts, **options)),
        ("ollama", "chat"): lambda: ollama_chat_json(text, **options),
        ("ollama", "stream"): lambda: _ndjson_events(ollama_chat_lines(parts, **options)),
        ("sample", "chat"): lambda: megachat_answer(text, **options),
        ("sample", "stream"): lambda: _sse_events(megachat_stream(parts, **options)),
    }
    return Template(provider, mode, build[(provider, mode)]())


def _kit_templates() -> list[Template]:
    out = [chat_template(provider, mode) for provider in PROVIDERS for mode in ("chat", "stream")]
    for kit in (OpenAIWireKit(), MistralWireKit(), OllamaWireKit(), SampleWireKit()):
        out.append(Template(kit.provider_id, "embeddings", json.loads(kit.embedding_reply(VECTORS).body)))
    for kit_class in (OpenAIWireKit, MistralWireKit, OllamaWireKit, SampleWireKit):
        kit = kit_class()
        out.append(Template(kit.provider_id, "models", json.loads(kit.models_reply(MODEL_IDS).body)))
    out.append(Template("claude", "models", json.loads(ClaudeWireKit().models_reply(MODEL_IDS).body)))
    return out


#: Recorded answers (tests/fixtures) used as further templates: (provider, mode, file).
_FIXTURES = (
    ("claude", "chat", "claude/message_text.json"),
    ("claude", "stream", "claude/stream_text.sse"),
    ("claude", "models", "claude/models_page_2.json"),
    ("mistral", "chat", "mistral/chat.json"),
    ("mistral", "stream", "mistral/chat_stream.sse"),
    ("mistral", "embeddings", "mistral/embeddings.json"),
    ("mistral", "models", "mistral/models.json"),
    ("ollama", "chat", "ollama/chat_plain.json"),
    ("ollama", "stream", "ollama/chat_plain.ndjson"),
    ("ollama", "embeddings", "ollama/embed.json"),
    ("ollama", "models", "ollama/tags.json"),
)


def _fixture_templates() -> list[Template]:
    out = []
    for provider, mode, name in _FIXTURES:
        path = FIXTURES / name
        if not path.is_file():  # the fixtures moved: the kit templates still run
            continue
        raw = path.read_bytes()
        if name.endswith(".sse"):
            answer: Answer = _sse_events([raw])
        elif name.endswith(".ndjson"):
            answer = _ndjson_events([raw])
        else:
            answer = json.loads(raw)
        out.append(Template(provider, mode, answer, source=f"fixture:{Path(name).stem}"))  # type: ignore[arg-type]
    return out


def templates(*, fixtures: bool = False) -> list[Template]:
    """Every kit template (one per provider and mode it has); with ``fixtures``, the recorded ones too."""
    return _kit_templates() + (_fixture_templates() if fixtures else [])


# -- rendering -------------------------------------------------------------------------------------------

_RAW_MARK = "\x00raw{}\x00"


def dumps(value: Any) -> str:
    """JSON text of ``value``; :class:`Raw` tokens are written verbatim (possibly invalid JSON)."""
    raws: list[str] = []

    def mark(v: Any) -> Any:
        if isinstance(v, Raw):
            raws.append(v.text)
            return _RAW_MARK.format(len(raws) - 1)
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mark(x) for x in v]
        return v

    text = json.dumps(mark(value), ensure_ascii=False, separators=(",", ":"))
    for index, token in enumerate(raws):
        text = text.replace(json.dumps(_RAW_MARK.format(index), ensure_ascii=False), token, 1)
    return text


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate the test put in travels as sent


def render_event(event: Event, framing: str) -> bytes:
    if framing == "ndjson":
        return _encode((event.data if event.raw else dumps(event.data)) + "\n")
    if event.comment:
        return _encode(f": {event.data}\n\n")
    head = f"event: {event.name}\n" if event.name is not None else ""
    data = event.data if event.raw else dumps(event.data)
    return _encode(head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n")


def render(template: Template, answer: Answer) -> list[bytes]:
    """The body as the server writes it: one piece for JSON, one per event for a stream."""
    if template.framing == "json":
        return [_encode(dumps(answer))]
    return [render_event(event, template.framing) for event in answer]
