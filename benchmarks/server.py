"""A lean fake LLM provider for benchmarks: precomputed replies on a raw asyncio protocol.

Every reply is built once at start-up, so serving one is a dictionary lookup and one
``transport.write``; the server stays far from the bottleneck (the runner checks its CPU share).
It binds 127.0.0.1 only, keeps connections alive, and speaks three wire formats:

* OpenAI: ``POST /v1/chat/completions`` (JSON, or SSE when the body says ``"stream": true``),
  ``POST /v1/embeddings`` (floats, or base64 when asked), ``GET /v1/models``;
* Anthropic: ``POST /v1/messages`` (JSON or SSE);
* Ollama: ``POST /api/chat`` (NDJSON unless ``"stream": false``), ``POST /api/embed``.

A path may start with ``/s<N>`` to choose a stream of N content chunks among the lengths given
at start-up (``--stream-lengths``); without it, streams have the first of them. Embedding answers
carry ``--embedding-count`` vectors of ``--embedding-dim`` floats, whatever was sent.

    python -m benchmarks.server --stream-lengths 2000,20 --embedding-count 256 --embedding-dim 1536

prints ``READY <port>`` on stdout when it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import struct
import sys
from typing import Any

MODEL = "gpt-4o-mini"
CLAUDE_MODEL = "claude-haiku-4-5"
OLLAMA_MODEL = "llama3.2"
TOKEN_COUNT = 1000  # streamed deltas cycle through "000 ", "001 ", ... (4 characters each; no two in a row alike)
ANSWER = "Hello! How can I help you today?"
TOKENS = [f"{i:03d} " for i in range(TOKEN_COUNT)]
MAX_HEAD = 64 << 10
MAX_BODY = 64 << 20


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _head(status: str, content_type: str, length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"content-type: {content_type}", "x-request-id: req-bench"]
    lines.append(f"content-length: {length}" if length is not None else "transfer-encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def json_reply(obj: Any, status: str = "200 OK") -> bytes:
    body = _dumps(obj)
    return _head(status, "application/json", len(body)) + body


def chunked_reply(content_type: str, events: list[bytes]) -> bytes:
    """One chunked-encoding chunk per event, as a provider flushes them."""
    parts = [_head("200 OK", content_type, None)]
    parts += [b"%x\r\n%s\r\n" % (len(event), event) for event in events]
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


# -- OpenAI ------------------------------------------------------------------------------------

def openai_chat() -> bytes:
    return json_reply({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_700_000_000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
        "system_fingerprint": "fp_bench"})


def openai_stream(n: int) -> bytes:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": MODEL,
            "system_fingerprint": "fp_bench"}

    def sse(obj: Any) -> bytes:
        return b"data: " + (obj if isinstance(obj, bytes) else _dumps(obj)) + b"\n\n"

    events = [sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "logprobs": None, "finish_reason": None}]})]
    tokens = [sse({**base, "choices": [{"index": 0, "delta": {"content": token}, "logprobs": None,
                                        "finish_reason": None}]}) for token in TOKENS]
    events += [tokens[i % TOKEN_COUNT] for i in range(n)]
    events.append(sse({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}))
    events.append(sse({**base, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": n,
                                                         "total_tokens": 12 + n}}))
    events.append(sse(b"[DONE]"))
    return chunked_reply("text/event-stream; charset=utf-8", events)


def _vectors(count: int, dim: int) -> list[list[float]]:
    rng = random.Random(1536)
    # float32-representable values, so the float and base64 answers carry the same numbers
    return [[struct.unpack("f", struct.pack("f", rng.uniform(-0.1, 0.1)))[0] for _ in range(dim)]
            for _ in range(count)]


def openai_embeddings(vectors: list[list[float]], *, b64: bool) -> bytes:
    data = []
    for i, vector in enumerate(vectors):
        value: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if b64 else vector
        data.append({"object": "embedding", "index": i, "embedding": value})
    return json_reply({"object": "list", "data": data, "model": "text-embedding-3-small",
                       "usage": {"prompt_tokens": len(vectors) * 8, "total_tokens": len(vectors) * 8}})


def openai_models() -> bytes:
    return json_reply({"object": "list", "data": [
        {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "bench"}
        for m in (MODEL, "text-embedding-3-small")]})


# -- Anthropic ---------------------------------------------------------------------------------

def claude_chat() -> bytes:
    return json_reply({
        "id": "msg_bench", "type": "message", "role": "assistant", "model": CLAUDE_MODEL,
        "content": [{"type": "text", "text": ANSWER}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 9}})


def claude_stream(n: int) -> bytes:
    def event(name: str, obj: Any) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps(obj) + b"\n\n"

    events = [event("message_start", {"type": "message_start", "message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": CLAUDE_MODEL, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})]
    tokens = [event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": token}}) for token in TOKENS]
    events += [tokens[i % TOKEN_COUNT] for i in range(n)]
    events += [event("content_block_stop", {"type": "content_block_stop", "index": 0}),
               event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                                          "stop_sequence": None},
                                       "usage": {"output_tokens": n}}),
               event("message_stop", {"type": "message_stop"})]
    return chunked_reply("text/event-stream; charset=utf-8", events)


# -- Ollama ------------------------------------------------------------------------------------

def _ollama_line(content: str, done: bool, n: int = 0) -> dict[str, Any]:
    line: dict[str, Any] = {"model": OLLAMA_MODEL, "created_at": "2025-01-01T00:00:00.000000Z",
                            "message": {"role": "assistant", "content": content}, "done": done}
    if done:
        line.update(done_reason="stop", total_duration=1000, load_duration=10, prompt_eval_count=12,
                    prompt_eval_duration=100, eval_count=n, eval_duration=800)
    return line


def ollama_chat() -> bytes:
    return json_reply(_ollama_line(ANSWER, True, 9))


def ollama_stream(n: int) -> bytes:
    tokens = [_dumps(_ollama_line(token, False)) + b"\n" for token in TOKENS]
    events = [tokens[i % TOKEN_COUNT] for i in range(n)] + [_dumps(_ollama_line("", True, n)) + b"\n"]
    return chunked_reply("application/x-ndjson", events)


def ollama_embed(vectors: list[list[float]]) -> bytes:
    return json_reply({"model": "nomic-embed-text", "embeddings": vectors, "total_duration": 1000,
                       "load_duration": 10, "prompt_eval_count": len(vectors) * 8})


NOT_FOUND = json_reply({"error": {"message": "no such route", "type": "invalid_request_error"}}, "404 Not Found")


class Replies:
    """Every reply the server can give, built once."""

    def __init__(self, stream_lengths: list[int], embedding_count: int, embedding_dim: int) -> None:
        vectors = _vectors(embedding_count, embedding_dim)
        self.default_length = stream_lengths[0]
        self.lengths = set(stream_lengths)
        self.fixed: dict[str, bytes] = {
            "/v1/chat/completions": openai_chat(),
            "/v1/messages": claude_chat(),
            "/api/chat": ollama_chat(),
            "/v1/models": openai_models(),
            "/api/embed": ollama_embed(vectors),
        }
        self.embeddings_float = openai_embeddings(vectors, b64=False)
        self.embeddings_b64 = openai_embeddings(vectors, b64=True)
        self.streams: dict[tuple[str, int], bytes] = {}
        for n in stream_lengths:
            self.streams["/v1/chat/completions", n] = openai_stream(n)
            self.streams["/v1/messages", n] = claude_stream(n)
            self.streams["/api/chat", n] = ollama_stream(n)

    def lookup(self, path: str, body: bytes) -> bytes:
        length = self.default_length
        if path.startswith("/s"):
            prefix, _, rest = path[2:].partition("/")
            if prefix.isdigit() and int(prefix) in self.lengths:
                length, path = int(prefix), "/" + rest
        path = path.partition("?")[0]
        if path == "/v1/embeddings":
            return self.embeddings_b64 if b'"base64"' in body else self.embeddings_float
        if path == "/api/chat":
            stream = b'"stream":false' not in body and b'"stream": false' not in body
        else:
            stream = b'"stream":true' in body or b'"stream": true' in body
        if stream and (path, length) in self.streams:
            return self.streams[path, length]
        return self.fixed.get(path, NOT_FOUND)


class Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive; requests are answered in order (pipelining works too)."""

    __slots__ = ("_buf", "_replies", "_transport")

    def __init__(self, replies: Replies) -> None:
        self._replies = replies
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        transport = self._transport
        assert transport is not None
        for _ in range(1024):  # bounded: at most this many pipelined requests per read
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    transport.close()
                return
            head = bytes(buf[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17:stop if stop >= 0 else None].strip() or b"0")
            if length > MAX_BODY or b"transfer-encoding: chunked" in head:
                transport.close()  # the benchmark clients never send chunked bodies
                return
            total = end + 4 + length
            if len(buf) < total:
                return
            line_end = head.find(b"\r\n")
            first = head[:line_end if line_end >= 0 else None]
            path = first.split(b" ", 2)[1].decode("latin-1") if first.count(b" ") >= 2 else "/"
            body = bytes(buf[end + 4:total])
            del buf[:total]
            transport.write(self._replies.lookup(path, body))
            if b"\r\nconnection: close" in head:
                transport.close()
                return
            if not buf:
                return


async def serve(args: argparse.Namespace) -> None:
    replies = Replies([int(n) for n in args.stream_lengths.split(",")], args.embedding_count, args.embedding_dim)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(replies), "127.0.0.1", args.port, backlog=4096,
                                      reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {port}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stream-lengths", default="2000,20", help="comma-separated; the first is the default")
    parser.add_argument("--embedding-count", type=int, default=256)
    parser.add_argument("--embedding-dim", type=int, default=1536)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(0)


if __name__ == "__main__":
    main()
