"""Holding credentials so that no repr, str, log line or exception can show them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import ConfigurationError

_MASK = "***"


class Secret:
    """A credential string whose ``repr``/``str`` never reveal it. Call :meth:`reveal` to use it."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        elif not isinstance(value, str):
            raise ConfigurationError(f"an API key must be a str, got {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        """A short, non-reversible id of the key (cache keys, metrics): never the key itself."""
        import hashlib
        import hmac

        return hmac.new(b"llm-connectors", self._value.encode(), hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        import hmac  # imported here: hashlib's OpenSSL binding is a few ms nobody needs at import

        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def check_header_value(name: str, value: str, *, secret: bool) -> None:
    """Reject values h11 would refuse, with a message that never echoes the value.

    h11's own error quotes the whole header value, key included (RELIABILITY.md §6.1).
    """
    for position, char in enumerate(value):
        code = ord(char)
        if (code < 0x20 and char != "\t") or code == 0x7F or code > 0xFF:
            what = "the API key" if secret else f"header {name!r}"
            raise ConfigurationError(
                f"{what} contains a forbidden character (code {code:#04x}) at position {position}; "
                "check for a stray newline or space copied with the key"
            )
    if value != value.strip():
        what = "the API key" if secret else f"header {name!r}"
        raise ConfigurationError(f"{what} has leading or trailing whitespace; strip it")


def check_headers(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if not name or any(c in name for c in ":\r\n\0 ") or not name.isascii():
            raise ConfigurationError(f"invalid header name {name!r}")
        check_header_value(name, value, secret=False)


def scrub(text: str, secrets: Iterable[Secret | str]) -> str:
    """Replace every occurrence of each secret in ``text`` with a mask."""
    for secret in secrets:
        raw = secret.reveal() if isinstance(secret, Secret) else secret
        if raw and len(raw) >= 4 and raw in text:
            text = text.replace(raw, _MASK)
    return text
