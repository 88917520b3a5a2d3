"""What the catalog says about one call, checked before any I/O.

Three checks, each a pure function of the catalog entry, the date and the call's options:

* :func:`check_lifecycle`: a retired model is a :class:`~llm_connectors.errors.NotFoundError`
  (code ``model_retired``) naming the successor; a deprecated one warns once per process
  (:class:`~llm_connectors.errors.ModelDeprecationWarning`).
* :func:`apply_rules`: options a model refuses raise :class:`~llm_connectors.errors.InvalidRequestError`
  naming model, option and rule, or are dropped (one INFO line per model and option) when the
  caller asked for ``drop_params``.
* :func:`check_inputs`: document input, and a final assistant turn (prefill), where the model
  takes none.
"""

from __future__ import annotations

import datetime
import logging
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import InvalidRequestError, ModelDeprecationWarning, NotFoundError, UnsupportedCapabilityError
from ..types import Message, ModelInfo, OptionRule

__all__ = ["apply_rules", "check_inputs", "check_lifecycle", "form", "violations"]

logger = logging.getLogger("llm_connectors")
_once_lock = threading.Lock()
_warned: set[tuple[str, str]] = set()  # (provider, model): deprecation warned
_dropped: set[tuple[str, str, str]] = set()  # (provider, model, option): drop logged


def form(option: str, value: Any) -> Any:
    """The value a rule compares: a tool choice's form, a thinking config's type, else the value."""
    if option == "tool_choice":
        return "named" if isinstance(value, Mapping) else value
    if option == "thinking" and isinstance(value, Mapping):
        return value.get("type")
    return value


def violations(rules: Iterable[OptionRule], params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(option, what is wrong)`` for each option in ``params`` a rule refuses."""
    found: list[tuple[str, str]] = []
    for rule in rules:
        if params.get(rule.option) is None:
            continue
        if any(form(other, params.get(other)) in values for other, values in rule.unless.items()):
            continue
        value = form(rule.option, params[rule.option])
        lifted = "".join(f" (allowed with {other}={', '.join(map(repr, values))})"
                         for other, values in rule.unless.items())
        if rule.rejected:
            found.append((rule.option, f"does not take {rule.option!r}{lifted}: {rule.why}"))
        elif rule.allowed is not None and value not in rule.allowed:
            found.append((rule.option, f"takes {rule.option!r} only as {' or '.join(map(repr, rule.allowed))}, "
                                       f"not {_short(value)}: {rule.why}"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and (
                (rule.minimum is not None and value < rule.minimum)
                or (rule.maximum is not None and value > rule.maximum)):
            bounds = " and ".join(f"{word} {limit:g}" for word, limit in
                                  (("at least", rule.minimum), ("at most", rule.maximum)) if limit is not None)
            found.append((rule.option, f"takes {rule.option!r} {bounds}, not {value!r}: {rule.why}"))
    return found


def apply_rules(provider: str, model: str, rules: Sequence[OptionRule], params: dict[str, Any], *,
                drop: bool) -> dict[str, Any]:
    """``params`` without the options the model refuses (``drop``), or an InvalidRequestError naming them."""
    found = violations(rules, params)
    if not found:
        return params
    if not drop:
        option, problem = found[0]
        more = f" (also: {', '.join(repr(o) for o, _ in found[1:])})" if len(found) > 1 else ""
        raise InvalidRequestError(
            f"{provider} model {model!r} {problem}{more}. Remove the option, or pass drop_params=True "
            "(per call or on the connector) to drop what a model refuses", provider=provider, code="model_rule")
    kept = dict(params)
    for option, problem in found:
        kept.pop(option, None)
        key = (provider, model, option)
        with _once_lock:
            first = key not in _dropped
            _dropped.add(key)
        if first:
            logger.info("drop_params: %s model %r %s; the option was dropped", provider, model, problem)
    return kept


def check_lifecycle(provider: str, model: str, info: ModelInfo, today: datetime.date) -> None:
    """Raise for a retired model; warn once for a deprecated one."""
    successor = f"; use {info.successor!r} instead" if info.successor else ""
    if info.retires_on and today >= datetime.date.fromisoformat(info.retires_on):
        raise NotFoundError(f"{provider} model {model!r} was retired on {info.retires_on} and no longer answers"
                            f"{successor}", provider=provider, code="model_retired")
    deprecated = info.deprecated and (info.deprecated_on is None
                                      or today >= datetime.date.fromisoformat(info.deprecated_on))
    if not deprecated:
        return
    with _once_lock:
        if (provider, model) in _warned:
            return
        _warned.add((provider, model))
    until = f"; it retires on {info.retires_on}" if info.retires_on else ""
    warnings.warn(f"{provider} model {model!r} is deprecated{until}{successor}", ModelDeprecationWarning,
                  stacklevel=5)


def check_inputs(provider: str, model: str, info: ModelInfo, messages: Sequence[Message], *,
                 has_documents: bool) -> None:
    """Refuse what the model cannot take in the messages themselves."""
    if has_documents and info.input_modalities and "document" not in info.input_modalities:
        raise UnsupportedCapabilityError(
            f"{provider} model {model!r} does not take documents (it takes {', '.join(info.input_modalities)}); "
            "send the text instead, or use a model that reads documents", provider=provider)
    if info.raw.get("assistant_prefill") is False and messages and messages[-1].role == "assistant":
        raise InvalidRequestError(
            f"{provider} model {model!r} does not take a final assistant message (prefill); end the "
            "conversation with a user or tool message, and ask for the format in the prompt or with "
            "response_format", provider=provider, code="model_rule")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
