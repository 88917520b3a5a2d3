"""Content decoding with a bound on what it may produce.

httpx decompresses with no limit: one 64 KiB gzip read can inflate to 64 MiB (RELIABILITY.md
§6.6). We read raw bytes instead and inflate with ``max_length``, so a decompression bomb is
stopped at the configured size, never after.
"""

from __future__ import annotations

import zlib

from ..errors import ProtocolError

__all__ = ["ACCEPT_ENCODING", "BoundedDecoder"]

#: What we tell servers we can decode (nothing we cannot bound).
ACCEPT_ENCODING = "gzip, deflate"


class BoundedDecoder:
    """Incrementally decode one body (identity, gzip or deflate), refusing to exceed ``limit``."""

    __slots__ = ("_inflater", "_produced", "limit", "provider")

    def __init__(self, encoding: str | None, limit: int, provider: str | None = None) -> None:
        self.limit = limit
        self.provider = provider
        self._produced = 0
        coding = (encoding or "identity").strip().lower()
        if coding in ("", "identity"):
            self._inflater = None
        elif coding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._inflater = zlib.decompressobj()
        else:
            raise ProtocolError(f"the server sent content-encoding {coding!r}, which we did not accept",
                                provider=provider)

    def feed(self, data: bytes) -> bytes:
        """Decoded bytes for ``data``; raise :class:`ProtocolError` past the limit or on corruption."""
        inflater = self._inflater
        if inflater is None:
            out = data
        else:
            budget = self.limit - self._produced + 1  # one byte over the limit proves the overflow
            try:
                out = inflater.decompress(data, budget)
            except zlib.error:
                raise ProtocolError("the compressed response is corrupt", provider=self.provider) from None
            if inflater.unconsumed_tail:
                raise self._too_large()
        self._produced += len(out)
        if self._produced > self.limit:
            raise self._too_large()
        return out

    def flush(self) -> bytes:
        if self._inflater is None:
            return b""
        try:
            return self.feed_tail(self._inflater.flush())
        except zlib.error:
            raise ProtocolError("the compressed response is corrupt", provider=self.provider) from None

    def feed_tail(self, data: bytes) -> bytes:
        self._produced += len(data)
        if self._produced > self.limit:
            raise self._too_large()
        return data

    def _too_large(self) -> ProtocolError:
        return ProtocolError(f"the response decompresses to more than the {self.limit}-byte limit",
                             provider=self.provider)
