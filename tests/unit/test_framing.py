"""SSE and NDJSON framers: WHATWG rules, any network split, size limits."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from llm_connectors.errors import ProtocolError
from llm_connectors.wire.framing import NDJSONDecoder, SSEDecoder, SSEEvent

PROPERTY = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def feed_all(decoder: SSEDecoder, pieces: list[bytes]) -> list[SSEEvent]:
    events: list[SSEEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    decoder.close()
    return events


def test_basic_events_and_fields() -> None:
    raw = b"event: ping\ndata: {}\n\ndata:no-space\nid: 7\n\n"
    assert feed_all(SSEDecoder(), [raw]) == [SSEEvent("ping", "{}"), SSEEvent("message", "no-space", "7")]


def test_crlf_cr_and_mixed_line_endings() -> None:
    raw = b"data: a\r\n\r\ndata: b\r\rdata: c\n\r\n"
    assert [e.data for e in feed_all(SSEDecoder(), [raw])] == ["a", "b", "c"]


def test_crlf_split_across_reads_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    # If the LF after the CR were a second line end, this would dispatch an empty line here.
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: y\r\n\r\n") == [SSEEvent("message", "x\ny")]


def test_comments_keepalives_unknown_fields_and_retry_ignored() -> None:
    raw = b": keep-alive\n:ping\nretry: 1000\nfoo: bar\ndata: ok\n\n"
    assert feed_all(SSEDecoder(), [raw]) == [SSEEvent("message", "ok")]


def test_multiline_data_joined_with_newline() -> None:
    raw = b"data: line one\ndata:line two\ndata\n\n"
    assert feed_all(SSEDecoder(), [raw])[0].data == "line one\nline two\n"


def test_event_without_data_is_not_dispatched() -> None:
    assert feed_all(SSEDecoder(), [b"event: lonely\n\ndata: x\n\n"]) == [SSEEvent("message", "x")]


def test_bom_stripped_only_at_start() -> None:
    raw = "\ufeffdata: a\n\ndata: \ufeffb\n\n".encode()
    assert [e.data for e in feed_all(SSEDecoder(), [raw])] == ["a", "\ufeffb"]


def test_unicode_line_separators_are_not_line_ends() -> None:
    text = "a\u2028b\u0085c\u2029d 😀"
    raw = f"data: {text}\n\n".encode()
    assert feed_all(SSEDecoder(), [raw[:12], raw[12:15], raw[15:]])[0].data == text


def test_multibyte_character_split_between_reads() -> None:
    raw = "data: é😀\n\n".encode()
    pieces = [raw[i:i + 1] for i in range(len(raw))]
    assert feed_all(SSEDecoder(), pieces)[0].data == "é😀"


def test_stream_cut_mid_event_raises() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: partial\n")
    with pytest.raises(ProtocolError, match="middle of an event"):
        decoder.close()
    decoder = SSEDecoder()
    decoder.feed(b"data: no newline at all")
    with pytest.raises(ProtocolError):
        decoder.close()


def test_line_and_event_size_limits() -> None:
    decoder = SSEDecoder(max_line=1024)
    with pytest.raises(ProtocolError, match="longer than 1024"):
        decoder.feed(b"data: " + b"x" * 2000)
    decoder = SSEDecoder(max_line=4 << 20)
    line = b"data: " + b"y" * 1000 + b"\n"
    with pytest.raises(ProtocolError, match="larger than"):
        for _ in range(5000):  # 5 MB of data lines in one event > the 4 MiB bound
            decoder.feed(line)


def test_line_bound_holds_however_the_line_arrives() -> None:
    # In one read, growing read by read with no line end yet, and completed in the read that ends it.
    for reads in ([b"data: " + b"x" * 2000 + b"\n\n"], [b"data: ", b"x" * 1000, b"x" * 1000],
                  [b"data: " + b"x" * 900, b"x" * 900 + b"\n\n"]):
        decoder = SSEDecoder(max_line=1024)
        with pytest.raises(ProtocolError, match="longer than 1024"):
            for piece in reads:
                decoder.feed(piece)
    with pytest.raises(ProtocolError, match="longer than 1024"):
        NDJSONDecoder(max_line=1024).feed(b"[" + b"1," * 600)


def test_default_bound_is_the_non_streaming_body_cap() -> None:
    from llm_connectors.http.settings import MAX_BODY_BYTES
    from llm_connectors.wire.framing import MAX_EVENT_BYTES, MAX_LINE_BYTES

    assert MAX_LINE_BYTES == MAX_EVENT_BYTES == MAX_BODY_BYTES == 32 << 20
    # A 2 MB line (a tool call's arguments, sent whole) in 4 KiB reads: one line, read in linear time.
    payload = b'{"a":"' + b"z" * (2 << 20) + b'"}\n'
    decoder = NDJSONDecoder()
    out = [obj for start in range(0, len(payload), 4096) for obj in decoder.feed(payload[start:start + 4096])]
    assert out == [{"a": "z" * (2 << 20)}]


def test_invalid_utf8_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        SSEDecoder().feed(b"data: \xff\xfe\n\n")


# -- property: any split into network reads gives the same events ------------------------------

field_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=30)
events_strategy = st.lists(
    st.tuples(st.sampled_from(["", "message", "ping", "content_block_delta"]),
              st.lists(field_text, min_size=1, max_size=3),
              st.booleans()),
    min_size=1, max_size=6)
line_ends = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def encoded_stream(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    """A valid stream with one line-ending style (mixed endings are covered by unit tests)."""
    events = draw(events_strategy)
    eol = draw(line_ends)
    out: list[str] = []
    expected: list[SSEEvent] = []
    if draw(st.booleans()):
        out.append("\ufeff")
    for name, data_lines, comment in events:
        if comment:
            out.append(": keep-alive" + eol)
        if name:
            out.append(f"event: {name}" + eol)
        values = []
        for line in data_lines:
            space = draw(st.booleans())
            out.append(f"data:{' ' if space else ''}{line}" + eol)
            # The parser strips exactly one leading space after the colon.
            values.append(line if space or not line.startswith(" ") else line[1:])
        out.append(eol)
        expected.append(SSEEvent(name or "message", "\n".join(values)))
    return "".join(out).encode(), expected


def split_points(data: bytes) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(min_value=0, max_value=len(data)), max_size=12).map(sorted)


def pieces_of(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@PROPERTY
@given(st.data())
def test_any_split_gives_the_same_events(data: st.DataObject) -> None:
    raw, expected = data.draw(encoded_stream())
    whole = feed_all(SSEDecoder(), [raw])
    assert whole == expected
    cuts = data.draw(split_points(raw))
    assert feed_all(SSEDecoder(), pieces_of(raw, cuts)) == whole
    # byte by byte, the most extreme split
    assert feed_all(SSEDecoder(), [raw[i:i + 1] for i in range(len(raw))]) == whole


@PROPERTY
@given(st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3), min_size=1,
                max_size=6), st.data())
def test_ndjson_any_split_gives_the_same_objects(objects: list[dict[str, str]], data: st.DataObject) -> None:
    eol = data.draw(st.sampled_from(["\n", "\r\n"]))
    raw = "".join(json.dumps(o, ensure_ascii=False) + eol for o in objects).encode()
    cuts = data.draw(split_points(raw))
    decoder = NDJSONDecoder()
    out = []
    for piece in pieces_of(raw, cuts):
        out.extend(decoder.feed(piece))
    out.extend(decoder.close())
    assert out == objects


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_raise_protocol_error(raw: bytes) -> None:
    for decoder in (SSEDecoder(), NDJSONDecoder()):
        try:
            decoder.feed(raw)
            decoder.close()
        except ProtocolError:
            pass


def test_ndjson_last_line_without_newline_and_cut_line() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"b"') == [{"a": 1}]
    assert decoder.feed(b": 2}") == []
    assert decoder.close() == [{"b": 2}]
    decoder = NDJSONDecoder()
    decoder.feed(b'{"cut": ')
    with pytest.raises(ProtocolError):
        decoder.close()


def test_ndjson_blank_lines_skipped_and_bad_json_typed() -> None:
    decoder = NDJSONDecoder(provider="ollama")
    assert decoder.feed(b'\n\n{"x": 1}\n\n') == [{"x": 1}]
    with pytest.raises(ProtocolError) as info:
        decoder.feed(b"not json\n")
    assert info.value.provider == "ollama"
