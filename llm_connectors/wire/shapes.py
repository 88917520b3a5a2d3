"""Provider answers are untrusted input: each is checked against the shape its provider documents.

A provider module declares its answers as msgspec ``Struct`` types (the fields we read, with
their types; anything else is ignored) and calls :func:`conform` on the decoded JSON. A wrong
type, a missing required field or a negative count is then a :class:`ProtocolError` that names
the provider, what was being read and the field path (``$.choices[0].message.content``), and
says what was expected — never the value, which may echo a secret. ``ProtocolError`` is
retryable and a fallback trigger, like every malformed answer.

Why msgspec: the checks run in C while the object is converted, so the translator reads typed
attributes instead of guessing at ``dict.get`` results, and the whole decode-and-check costs less
per stream event than the standard library's ``json.loads`` alone did (see docs/performance.md).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

from ..errors import ProtocolError

__all__ = ["Count", "Shape", "conform"]

T = TypeVar("T")

#: A token count or similar: an integer from 0 to 2**53 (``true``, ``3.0``, ``"3"`` and ``-1`` are refused, and so
#: is a count no float holds exactly: a 400-digit "token count" is garbage, and cost estimates multiply floats).
Count = Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class Shape(msgspec.Struct):
    """Base for declared answer shapes (unknown fields are ignored)."""


def conform(data: Any, shape: type[T], *, provider: str, what: str) -> T:
    """``data`` (decoded JSON) as ``shape``, or a :class:`ProtocolError` saying where it differs."""
    try:
        return msgspec.convert(data, shape)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"the {what} does not have {provider}'s documented shape: {exc}",
                            provider=provider) from None
