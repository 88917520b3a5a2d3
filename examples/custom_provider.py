"""A custom provider in a few dozen lines: subclass, register, call. Runs offline.

"EchoChat" answers with your prompt reversed. It is served by a local fake on 127.0.0.1,
so this script needs no network and no key. The full, commented template is
``llm_connectors/connectors/sample.py``; the walkthrough is ``docs/adding-a-provider.md``.

    python examples/custom_provider.py
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

import anyio

import llm_connectors as lc
from llm_connectors.testing import FakeServer, Reply, Request

# 1. What the provider is: id, auth, capabilities, options (validated before any I/O).
ECHOCHAT = lc.ServiceDefinition(
    id="echochat",
    name="EchoChat",
    base_url="http://127.0.0.1:9999",
    auth=lc.AuthSpec(kind="bearer", env_var="ECHOCHAT_API_KEY"),
    capabilities=frozenset({lc.Capability.CHAT, lc.Capability.STREAMING}),
    parameters=(lc.ParameterDefinition("temperature", "number", minimum=0.0, maximum=1.0),),
    default_model="echo-1",
)


class EchoDecoder(lc.StreamDecoder):
    """EchoChat streams NDJSON: ``{"text": ...}`` lines, then ``{"done": true, ...}``."""

    def feed(self, line: Any) -> lc.ChatChunk | None:
        if line.get("done"):
            self.done = True  # the end marker: without it the stream counts as cut
            return self.chunk(finish_reason="stop", usage=lc.Usage.of(line["in"], line["out"]))
        return self.chunk(line["text"])


class EchoChat(lc.BaseConnector):
    """2. A pure translator: build the request, parse the answer; the base class does the I/O."""

    definition: ClassVar[lc.ServiceDefinition] = ECHOCHAT
    stream_format: ClassVar[Literal["sse", "ndjson"]] = "ndjson"

    def build_chat_request(self, request: lc.ChatRequest) -> lc.HTTPRequest:
        body = {"model": request.model, "prompt": request.messages[-1].text, "stream": request.stream,
                **request.params}
        return lc.HTTPRequest("POST", "/echo", json=body)

    def parse_chat_response(self, data: Any, request: lc.ChatRequest) -> lc.ChatResponse:
        return lc.ChatResponse(content=data["text"], finish_reason="stop", tool_calls=[],
                               usage=lc.Usage.of(data["in"], data["out"]), provider=self.provider,
                               model=request.model, raw=data)

    def create_stream_decoder(self, request: lc.ChatRequest) -> lc.StreamDecoder:
        return EchoDecoder(self.provider, request.model)


def echo_service(request: Request) -> Reply:
    """The fake EchoChat service (a real HTTP server on 127.0.0.1, see FakeServer)."""
    if request.headers.get("authorization") != "Bearer demo-key":
        return Reply.json({"error": {"message": "bad key"}}, 401)
    body = request.json()
    text = body["prompt"][::-1]
    counts = {"in": len(body["prompt"].split()), "out": len(text.split())}
    if not body["stream"]:
        return Reply.json({"text": text, **counts})
    lines = [{"text": word + " "} for word in text.split()] + [{"done": True, **counts}]
    return Reply.ndjson([json.dumps(line).encode() + b"\n" for line in lines])


async def main() -> None:
    lc.register_connector("echochat", EchoChat)  # 3. register (or use an entry point)
    with FakeServer(echo_service) as server:
        async with lc.get_connector("echochat", api_key="demo-key", base_url=server.url) as conn:
            resp = await conn.generate_chat(None, "hello custom provider", temperature=0.2)
            print(f"chat:   {resp.content!r} ({resp.usage.total_tokens} tokens)")
            print("stream: ", end="")
            async for chunk in conn.generate_chat_stream(None, "streams work too"):
                print(chunk.delta, end="", flush=True)
            print()
            try:
                await conn.generate_chat(None, "hi", temperature=3)
            except lc.InvalidRequestError as exc:  # checked against the definition, nothing sent
                print(f"error:  {exc}")
            assert len(server.requests) == 2


if __name__ == "__main__":
    anyio.run(main)
