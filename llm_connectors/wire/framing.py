"""Incremental Server-Sent Events and NDJSON framers.

Both take raw bytes exactly as the network delivers them, in any split, and return complete
events. Lines end at CR, LF or CRLF (never at U+2028 and friends, which ``str.splitlines``
would split on); a CRLF pair split across two reads is one line end; UTF-8 is decoded per
complete line, so a character straddling two reads is intact. Sizes are capped so a hostile
or broken server cannot exhaust memory (RELIABILITY.md §6.6): one line, and one SSE event's
data, may not exceed ``max_bytes`` — by default the non-streaming body cap, so an answer that
parses whole parses streamed too (Ollama and Mistral send a tool call whole in one line).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import ProtocolError
from . import jsonio as _json

#: The default bound on one stream line and one event (and, in ``http/``, on a non-streaming body).
MAX_MESSAGE_BYTES = 32 << 20  # 32 MiB
MAX_LINE_BYTES = MAX_MESSAGE_BYTES
MAX_EVENT_BYTES = MAX_MESSAGE_BYTES
_BOM = "\ufeff"


class SSEEvent(NamedTuple):
    """One dispatched server-sent event."""

    event: str
    data: str
    id: str | None = None


class _LineSplitter:
    """Splits a byte stream into complete lines on CR, LF or CRLF.

    A line still open grows in a ``bytearray`` (amortised appends), so a long line arriving in
    many reads costs linear time, not a copy of the whole line per read.
    """

    __slots__ = ("_buf", "_skip_lf", "max_line")

    def __init__(self, max_line: int) -> None:
        self._buf = bytearray()  # the open line
        self._skip_lf = False
        self.max_line = max_line

    def feed(self, data: bytes) -> list[bytes]:
        if self._skip_lf and data:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        pending = self._buf
        if b"\n" not in data and b"\r" not in data:  # the open line grows (or nothing came)
            pending += data
            if len(pending) > self.max_line:
                raise ProtocolError(f"stream line longer than {self.max_line} bytes")
            return []
        if pending:
            pending += data
            buf = bytes(pending)
            pending.clear()
        else:
            buf = data
        if b"\r" in buf:
            if buf[-1:] == b"\r":
                # The LF that may follow belongs to this line end, not to a new empty line.
                self._skip_lf = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        rest = lines.pop()
        if len(buf) > self.max_line and max(len(rest), *map(len, lines)) > self.max_line:
            raise ProtocolError(f"stream line longer than {self.max_line} bytes")
        pending += rest
        return lines

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)


class SSEDecoder:
    """Incremental SSE parser following the WHATWG event-stream rules.

    ``feed()`` returns the events completed by the bytes given; ``close()`` checks that the
    stream did not end in the middle of an event (a cut stream is an error, not an end).
    """

    __slots__ = ("_data", "_data_size", "_event", "_id", "_lines", "_max_event", "_started")

    def __init__(self, *, max_line: int = MAX_LINE_BYTES, max_event: int | None = None) -> None:
        self._lines = _LineSplitter(max_line)
        self._max_event = max_line if max_event is None else max_event
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0
        self._id: str | None = None
        self._started = False

    def feed(self, data: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        lines = self._lines.feed(data)
        if not lines:
            return events
        try:  # one decode for every complete line (a line end is never inside a UTF-8 sequence)
            text = lines[0].decode("utf-8") if len(lines) == 1 else b"\n".join(lines).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("stream is not valid UTF-8") from None
        if not self._started:
            self._started = True
            if text.startswith(_BOM):
                text = text[1:]
        for line in text.split("\n"):
            if line.startswith("data: "):  # nearly every line: skip the general field parsing below
                value = line[6:]
                self._data_size += len(value) + 1
                if self._data_size > self._max_event:
                    raise ProtocolError(f"stream event larger than {self._max_event} bytes")
                self._data.append(value)
                continue
            if not line:
                if self._data:
                    events.append(SSEEvent(self._event or "message", "\n".join(self._data), self._id))
                self._event = ""
                self._data = []
                self._data_size = 0
                continue
            if line[0] == ":":
                continue  # comment / keep-alive
            field, sep, value = line.partition(":")
            if sep and value[:1] == " ":
                value = value[1:]
            if field == "data":
                self._data_size += len(value) + 1
                if self._data_size > self._max_event:
                    raise ProtocolError(f"stream event larger than {self._max_event} bytes")
                self._data.append(value)
            elif field == "event":
                self._event = value
            elif field == "id" and "\0" not in value:
                self._id = value
            # "retry" and unknown fields are ignored, as the spec requires.
        return events

    def close(self) -> None:
        """Raise :class:`ProtocolError` if the stream ended inside an event."""
        if self._data or self._lines.pending.strip():
            raise ProtocolError("stream ended in the middle of an event")


class NDJSONDecoder:
    """Incremental newline-delimited JSON parser (Ollama's stream format)."""

    __slots__ = ("_error", "_lines", "provider")

    def __init__(self, *, max_line: int = MAX_LINE_BYTES, provider: str | None = None) -> None:
        self._lines = _LineSplitter(max_line)
        self.provider = provider
        self._error: ProtocolError | None = None

    def feed(self, data: bytes) -> list[Any]:
        """The objects of the complete lines so far. A bad line after good ones in the same read is
        raised on the next call: the good ones reach the caller first, however the bytes were split."""
        if self._error is not None:
            raise self._error
        out = []
        for line in self._lines.feed(data):
            if line.strip():
                try:
                    out.append(_json.loads(line, provider=self.provider, what="stream line"))
                except ProtocolError as exc:
                    if not out:
                        raise
                    self._error = exc
                    break
        return out

    def close(self) -> list[Any]:
        """Return a last object sent without a trailing newline; raise if it is cut short."""
        if self._error is not None:
            raise self._error
        rest = self._lines.pending
        self._lines = _LineSplitter(self._lines.max_line)
        if not rest.strip():
            return []
        return [_json.loads(rest, provider=self.provider, what="final stream line")]
