"""JSON decoding that turns every hazard into a typed :class:`ProtocolError`.

The stdlib raises ``RecursionError`` on deep nesting, ``ValueError`` on 4300+ digit ints and
accepts ``NaN``/``Infinity`` (RELIABILITY.md §6.6); none of that may escape as a bare error.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ProtocolError


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_decode = _decoder.decode


def loads(text: str | bytes, *, provider: str | None = None, what: str = "response") -> Any:
    """Decode JSON text or UTF-8 bytes; raise :class:`ProtocolError` naming ``what`` on failure."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return _decode(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = type(exc).__name__ if isinstance(exc, RecursionError) else str(exc)[:200]
        raise ProtocolError(f"invalid JSON in {what}: {reason}", provider=provider) from None


#: Public name for connector authors: decode JSON, raising ProtocolError on anything malformed.
decode_json = loads


# json.dumps with any option builds a new JSONEncoder per call; one encoder, made once, does the same.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON for request bodies."""
    return _encode(value).encode()
