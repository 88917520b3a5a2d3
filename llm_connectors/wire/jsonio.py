"""JSON in and out, with every hazard of untrusted input turned into a typed :class:`ProtocolError`.

Decoding uses msgspec's C decoder (about three times as fast as the standard library's per
stream event), which also refuses what RFC 8259 refuses and the standard library accepts:
``NaN``/``Infinity``, lone surrogates, a BOM, invalid UTF-8. Deep nesting stops at a recursion
limit instead of exhausting the stack. Request bodies are encoded by the standard library with
``allow_nan=False``, so a NaN from the caller is an error, never ``NaN`` on the wire.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from ..errors import ProtocolError

__all__ = ["decode_json", "dumps", "loads"]

_decode = msgspec.json.Decoder().decode


def loads(text: str | bytes, *, provider: str | None = None, what: str = "response") -> Any:
    """Decode JSON text or UTF-8 bytes; raise :class:`ProtocolError` naming ``what`` on failure."""
    try:
        return _decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:  # the last: numbers out of range
        reason = "nesting too deep" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise ProtocolError(f"invalid JSON in {what}: {reason}", provider=provider) from None


#: Public name for connector authors: decode JSON, raising ProtocolError on anything malformed.
decode_json = loads


# json.dumps with any option builds a new JSONEncoder per call; one encoder, made once, does the same.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON for request bodies."""
    return _encode(value).encode()
