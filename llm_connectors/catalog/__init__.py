"""The model catalog: what each model takes, costs and how long it lives, shipped as data.

One JSON file per provider sits beside this module (``claude.json``, ``openai.json``,
``mistral.json``); each entry says where its facts come from. The file format is the
:class:`CatalogFile` struct below (``schema.json`` is generated from it and checked by a test).
A user file named by ``LLM_CONNECTORS_MODELS`` (same format) and :func:`register_model` add or
override entries. Lookups accept an entry's id, an alias, or a dated or ``-latest`` form of either
(``claude-haiku-4-5-20251001``, ``mistral-small-2506``).

What reads it: connectors check options per model before any I/O (:mod:`.checks`),
:mod:`~llm_connectors.pricing` takes its prices from it, ``lc.models(provider)`` and
``conn.model_info(model)`` show it, and ``list_models()`` fills in what a provider does not report.
A model the catalog does not know passes with the provider's generic rules.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import threading
from collections.abc import Iterable
from typing import Any

import msgspec

from ..errors import ConfigurationError
from ..types import ModelInfo, OptionRule, Price

__all__ = [
    "MODELS_ENV",
    "CatalogFile",
    "entry",
    "merged",
    "models",
    "register_model",
    "reload",
    "schema",
    "today",
]

#: The environment variable naming a user catalog file (JSON, the same format as the built-in ones).
MODELS_ENV = "LLM_CONNECTORS_MODELS"
_DATED = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|\d{4}|latest)$")


# -- the file format (the schema) ------------------------------------------------------------------

# The file format mirrors types.Price/OptionRule/ModelInfo field for field on purpose: these structs
# are the schema (strict: an unknown key in a file is an error), the dataclasses the run-time values.
class _Price(msgspec.Struct, forbid_unknown_fields=True):
    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    batch_input: float | None = None
    batch_output: float | None = None


class _Rule(msgspec.Struct, forbid_unknown_fields=True):
    option: str
    why: str
    rejected: bool = False
    allowed: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    unless: dict[str, list[Any]] = msgspec.field(default_factory=dict)


class _Entry(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    source: str
    aliases: list[str] = msgspec.field(default_factory=list)
    context_window: int | None = None
    max_output_tokens: int | None = None
    default_max_tokens: int | None = None
    input_modalities: list[str] = msgspec.field(default_factory=list)
    reasoning_efforts: list[str] = msgspec.field(default_factory=list)
    chars_per_token: float | None = None
    api: str | None = None
    rules: list[_Rule] = msgspec.field(default_factory=list)
    price: _Price | None = None
    deprecated: bool = False
    deprecated_on: datetime.date | None = None
    retires_on: datetime.date | None = None
    successor: str | None = None
    assistant_prefill: bool | None = None


class CatalogFile(msgspec.Struct, forbid_unknown_fields=True):
    """A catalog file: one provider's models (``models`` may be empty)."""

    provider: str
    as_of: datetime.date
    models: list[_Entry]
    notes: str = ""


# -- loading ---------------------------------------------------------------------------------------

_lock = threading.Lock()
_entries: dict[str, dict[str, ModelInfo]] | None = None  # provider -> id or alias -> entry
_registered: list[tuple[str, ModelInfo]] = []  # register_model calls, applied over the files


def _info(provider: str, raw: _Entry) -> ModelInfo:
    return ModelInfo(
        id=raw.id, name=raw.id, context_length=raw.context_window, max_output_tokens=raw.max_output_tokens,
        default_max_tokens=raw.default_max_tokens, input_modalities=tuple(raw.input_modalities),
        reasoning_efforts=tuple(raw.reasoning_efforts), chars_per_token=raw.chars_per_token, api=raw.api,
        price=Price(**msgspec.structs.asdict(raw.price)) if raw.price else None,
        deprecated=raw.deprecated or raw.deprecated_on is not None,
        deprecated_on=raw.deprecated_on.isoformat() if raw.deprecated_on else None,
        retires_on=raw.retires_on.isoformat() if raw.retires_on else None,
        successor=raw.successor, aliases=tuple(raw.aliases), source=raw.source,
        rules=tuple(OptionRule(option=r.option, rejected=r.rejected,
                               allowed=tuple(r.allowed) if r.allowed is not None else None, minimum=r.minimum,
                               maximum=r.maximum, unless={k: tuple(v) for k, v in r.unless.items()}, why=r.why)
                    for r in raw.rules),
        raw={"provider": provider, "assistant_prefill": raw.assistant_prefill})


def _read(text: bytes, where: str) -> CatalogFile:
    try:
        return msgspec.json.decode(text, type=CatalogFile)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigurationError(f"model catalog {where} is malformed: {exc}") from None


def _files() -> Iterable[tuple[bytes, str]]:
    from importlib import resources  # ~8 ms to import: only when the catalog is first read

    for item in sorted(resources.files(__name__).iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json") and item.name != "schema.json":
            yield item.read_bytes(), f"{item.name} (built in)"
    user = os.environ.get(MODELS_ENV, "").strip()
    if user:
        try:
            with open(user, "rb") as file:
                yield file.read(), f"{user} ({MODELS_ENV})"
        except OSError as exc:
            raise ConfigurationError(f"{MODELS_ENV}={user!r} cannot be read: {exc.strerror}") from None


def _load() -> dict[str, dict[str, ModelInfo]]:
    global _entries
    with _lock:
        if _entries is None:
            table: dict[str, dict[str, ModelInfo]] = {}
            for text, where in _files():
                catalog = _read(text, where)
                for raw in catalog.models:
                    _add(table, catalog.provider, _info(catalog.provider, raw))
            for provider, info in _registered:
                _add(table, provider, info)
            _entries = table
        return _entries


def _add(table: dict[str, dict[str, ModelInfo]], provider: str, info: ModelInfo) -> None:
    by_id = table.setdefault(provider, {})
    for name in (info.id, *info.aliases):
        by_id[name] = info


def reload() -> None:
    """Read the files again (after changing ``LLM_CONNECTORS_MODELS``; tests)."""
    global _entries
    with _lock:
        _entries = None


# -- lookups ---------------------------------------------------------------------------------------

def entry(provider: str, model: str | None) -> ModelInfo | None:
    """The catalog's entry for ``model`` at ``provider`` (id, alias, dated or ``-latest`` form), or ``None``."""
    if not model:
        return None
    table = _load().get(provider)
    if not table:
        return None
    found = table.get(model)
    if found is None:
        base = _DATED.sub("", model)
        found = table.get(base) if base != model else None
    return found


def models(provider: str) -> list[ModelInfo]:
    """Every catalog entry of ``provider`` (each once, in file order)."""
    seen: dict[str, ModelInfo] = {}
    for info in _load().get(provider, {}).values():
        seen.setdefault(info.id, info)
    return list(seen.values())


def register_model(provider: str, model: str, **fields: Any) -> ModelInfo:
    """Add or override a catalog entry (fields as in the catalog files: ``price={"input": .., "output": ..}``,
    ``rules=[{"option": "temperature", "rejected": True, "why": ".."}]``, ``retires_on="2027-01-01"``...).

    Raises:
        ConfigurationError: a field that is not in the catalog format, or a value of the wrong type.
    """
    fields.setdefault("source", "register_model")
    raw = msgspec.json.encode({"provider": provider, "as_of": datetime.date.today().isoformat(),
                               "models": [{"id": model, **fields}]}, enc_hook=str)
    info = _info(provider, _read(raw, f"register_model({provider!r}, {model!r})").models[0])
    with _lock:
        _registered.append((provider, info))
        if _entries is not None:
            _add(_entries, provider, info)
    return info


def merged(provider: str, reported: ModelInfo) -> ModelInfo:
    """A model a provider listed, with the catalog's facts filling what the provider did not say
    (what it did say wins: its own lifecycle and limits are newer than our files)."""
    known = entry(provider, reported.id)
    if known is None:
        return reported
    return dataclasses.replace(
        known, id=reported.id, name=reported.name, created=reported.created, raw=reported.raw,
        context_length=reported.context_length or known.context_length,
        max_output_tokens=reported.max_output_tokens or known.max_output_tokens,
        deprecated=reported.deprecated or known.deprecated,
        deprecated_on=reported.deprecated_on or known.deprecated_on,
        retires_on=reported.retires_on or known.retires_on)


def schema() -> dict[str, Any]:
    """The JSON Schema of a catalog file (``schema.json`` beside this module is this, written out by
    ``python -m llm_connectors.catalog``; a test keeps the two equal)."""
    return msgspec.json.schema(CatalogFile)


def today() -> datetime.date:
    """The date deprecation and retirement are judged on (a function, so tests can move it)."""
    return datetime.date.today()
