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


def check_header_value(name: str, value: object, *, secret: bool) -> None:
    """Reject what cannot travel in a header, with a message that never echoes the value.

    Both engines encode header values as ASCII, and h11's own error quotes the whole header
    value, key included (RELIABILITY.md §6.1); so the check is ours, and says only where. A key
    is printable ASCII with no whitespace at all; another header may hold spaces and tabs.
    """
    what = "the API key" if secret else f"header {name!r}"
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a str, got {type(value).__name__}")
    if secret and not value:
        raise ConfigurationError("the API key is empty; pass the key, or leave api_key unset")
    for position, char in enumerate(value):
        code = ord(char)
        if not 0x20 <= code < 0x7F and not (char == "\t" and not secret):
            raise ConfigurationError(
                f"{what} contains a forbidden character (code {code:#04x}) at position {position}; only printable "
                "ASCII can be sent: check for a stray newline, space or accented letter copied with it")
        if secret and char == " ":
            raise ConfigurationError(f"the API key contains a space at position {position}; an API key has none")
    if value != value.strip():
        raise ConfigurationError(f"{what} has leading or trailing whitespace; strip it")


def check_headers(headers: object) -> None:
    """Extra headers: a mapping of header names to str values that can travel (checked before any I/O)."""
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"headers must be a dict of str to str, got {type(headers).__name__}")
    for name, value in headers.items():
        if not isinstance(name, str) or not name or any(c in name for c in ":\r\n\0 \t") \
                or not name.isascii() or not name.isprintable():
            raise ConfigurationError(f"invalid header name {name!r}" if isinstance(name, str)
                                     else f"header names must be str, got {type(name).__name__}")
        check_header_value(name, value, secret=False)


def _spellings(raw: str) -> tuple[str, ...]:
    """How a key may come back in text: as is, URL-encoded (a query string echoed back), base64
    (a Basic header echoed back)."""
    import base64
    import urllib.parse

    return (raw, urllib.parse.quote(raw, safe=""), urllib.parse.quote_plus(raw),
            base64.b64encode(raw.encode()).decode())


def scrub(text: str, secrets: Iterable[Secret | str]) -> str:
    """Replace every occurrence of each secret, in each spelling of :func:`_spellings`, with a mask."""
    for secret in secrets:
        raw = secret.reveal() if isinstance(secret, Secret) else secret
        if not raw or len(raw) < 4:
            continue
        for spelling in _spellings(raw):
            if spelling in text:
                text = text.replace(spelling, _MASK)
    return text
