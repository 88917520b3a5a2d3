"""Caller values that go into a JSON request body, checked before anything is sent.

A tool schema, ``extra`` fields or tool-call arguments from the caller end up in the body. The
standard library would refuse NaN and Infinity only while encoding (a bare ``ValueError``), and
a lone surrogate in a string only when the body is encoded to UTF-8 (a ``UnicodeEncodeError``);
big integers go through and are refused by the provider after a round trip. Here each is an
:class:`InvalidRequestError` naming where it is, raised while the call is prepared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import InvalidRequestError

__all__ = ["INT64_MAX", "check_json_value", "check_text"]

#: Providers parse JSON integers as 64-bit at most.
INT64_MAX = 2**63 - 1
_MAX_DEPTH = 64


def check_text(text: str, where: str, provider: str | None) -> None:
    """Refuse a string that cannot be sent as UTF-8 (a lone surrogate, e.g. from a bad decode)."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(f"{where} holds a lone surrogate (U+{ord(text[exc.start]):04X}) at position "
                                  f"{exc.start}, which is not valid text; decode your input with "
                                  "errors='replace'", provider=provider) from None


def check_json_value(value: Any, where: str, provider: str | None, *, _depth: int = 0) -> None:
    """Refuse anything JSON cannot carry faithfully: NaN, Infinity, non-string keys, lone surrogates,
    integers beyond 64 bits, objects of other types, nesting deeper than 64."""
    if _depth > _MAX_DEPTH:
        raise InvalidRequestError(f"{where} is nested more than {_MAX_DEPTH} levels deep", provider=provider)
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        check_text(value, where, provider)
    elif isinstance(value, int):
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise InvalidRequestError(f"{where} is an integer beyond 64 bits", provider=provider)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequestError(f"{where} is {value!r}, which JSON cannot carry; use a finite number",
                                      provider=provider)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequestError(f"{where} has a key of type {type(key).__name__}; JSON keys are strings",
                                          provider=provider)
            check_text(key, f"{where} key", provider)
            check_json_value(item, f"{where}[{key!r}]", provider, _depth=_depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json_value(item, f"{where}[{index}]", provider, _depth=_depth + 1)
    else:
        raise InvalidRequestError(f"{where} is a {type(value).__name__}, which JSON cannot carry",
                                  provider=provider)
