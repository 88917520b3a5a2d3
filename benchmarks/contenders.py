"""The clients being compared, each doing the same calls against the fake server.

* ``ours-httpx`` / ``ours-aiohttp``: this SDK, default resilience on (retries and circuit
  breaker), on each HTTP engine.
* ``raw-httpx`` / ``raw-aiohttp``: minimal hand-written clients sending the same requests and
  extracting the same fields: what you would write without any SDK.
* ``openai-sdk`` / ``litellm``: the official OpenAI SDK and LiteLLM (the ``bench`` extra), OpenAI
  wire format only.

Every contender answers four calls: ``chat()`` → the text, ``stream()`` → (text, seconds to the
first content chunk), ``embed(inputs)`` → the vectors, and ``close()``. Imports happen in
``open()``, so a worker process only loads the contender it runs.
"""

from __future__ import annotations

import abc
import base64
import json
import time
from array import array
from typing import Any

MODEL = "gpt-4o-mini"
CLAUDE_MODEL = "claude-haiku-4-5"
OLLAMA_MODEL = "llama3.2"
EMBED_MODEL = "text-embedding-3-small"
OLLAMA_EMBED_MODEL = "nomic-embed-text"
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello in a friendly way."}]
KEY = "sk-bench-not-a-real-key"
MAX_CONNECTIONS = 100  # the same pool size for every contender that lets us choose it
MAX_IDLE = 20  # httpx's default idle (keep-alive) pool, which ours keeps too (PoolLimits)


class Contender(abc.ABC):
    name = "?"
    providers: tuple[str, ...] = ("openai", "claude", "ollama")

    @abc.abstractmethod
    async def open(self, base_url: str, provider: str) -> None: ...

    @abc.abstractmethod
    async def chat(self) -> str: ...

    @abc.abstractmethod
    async def stream(self) -> tuple[str, float | None]: ...

    @abc.abstractmethod
    async def embed(self, inputs: list[str]) -> list[list[float]]: ...

    async def close(self) -> None:  # most contenders have nothing to close
        return None


class Ours(Contender):
    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.name = f"ours-{engine}"

    async def open(self, base_url: str, provider: str) -> None:
        if provider == "openai":
            from llm_connectors.connectors.openai import OpenAIConnector

            self.conn: Any = OpenAIConnector(api_key=KEY, base_url=base_url + "/v1", transport=self.engine)
            self.model, self.embed_model = MODEL, EMBED_MODEL
        elif provider == "claude":
            from llm_connectors.connectors.claude import ClaudeConnector

            self.conn = ClaudeConnector(api_key=KEY, base_url=base_url, transport=self.engine)
            self.model, self.embed_model = CLAUDE_MODEL, ""
        else:
            from llm_connectors.connectors.ollama import OllamaConnector

            self.conn = OllamaConnector(base_url=base_url, transport=self.engine)
            self.model, self.embed_model = OLLAMA_MODEL, OLLAMA_EMBED_MODEL

    async def chat(self) -> str:
        response = await self.conn.generate_chat(self.model, MESSAGES)
        return str(response.content)

    async def stream(self) -> tuple[str, float | None]:
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        async with self.conn.generate_chat_stream(self.model, MESSAGES) as stream:
            async for chunk in stream:
                if chunk.delta:
                    if first is None:
                        first = time.perf_counter() - started
                    parts.append(chunk.delta)
        return "".join(parts), first

    async def embed(self, inputs: list[str]) -> list[list[float]]:
        response = await self.conn.generate_embedding(self.embed_model, inputs)
        return list(response.embeddings)

    async def close(self) -> None:
        await self.conn.aclose()


class _Raw(Contender):
    """Request bodies and answer parsing shared by the two raw clients."""

    def _setup(self, base_url: str, provider: str) -> None:
        self.provider = provider
        if provider == "openai":
            self.chat_url, self.embed_url = base_url + "/v1/chat/completions", base_url + "/v1/embeddings"
            self.headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
            self.body = {"model": MODEL, "messages": MESSAGES}
            self.stream_body = {**self.body, "stream": True, "stream_options": {"include_usage": True}}
        elif provider == "claude":
            self.chat_url, self.embed_url = base_url + "/v1/messages", ""
            self.headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
            self.body = {"model": CLAUDE_MODEL, "max_tokens": 1024, "system": MESSAGES[0]["content"],
                         "messages": MESSAGES[1:]}
            self.stream_body = {**self.body, "stream": True}
        else:
            self.chat_url, self.embed_url = base_url + "/api/chat", base_url + "/api/embed"
            self.headers = {"content-type": "application/json"}
            self.body = {"model": OLLAMA_MODEL, "messages": MESSAGES, "stream": False}
            self.stream_body = {**self.body, "stream": True}

    def _text(self, data: Any) -> str:
        if self.provider == "openai":
            return str(data["choices"][0]["message"]["content"])
        if self.provider == "claude":
            return "".join(block["text"] for block in data["content"] if block["type"] == "text")
        return str(data["message"]["content"])

    def _embed_body(self, inputs: list[str]) -> bytes:
        if self.provider == "openai":
            return json.dumps({"model": EMBED_MODEL, "input": inputs, "encoding_format": "base64"}).encode()
        return json.dumps({"model": OLLAMA_EMBED_MODEL, "input": inputs}).encode()

    def _vectors(self, data: Any) -> list[list[float]]:
        if self.provider == "openai":
            return [array("f", base64.b64decode(item["embedding"])).tolist() for item in data["data"]]
        return list(data["embeddings"])

    def _delta(self, line: str) -> str | None:
        """The content delta carried by one stream line, if any."""
        if self.provider == "ollama":
            if not line:
                return None
            return json.loads(line)["message"]["content"] or None
        if not line.startswith("data: "):
            return None
        data = line[6:]
        if data == "[DONE]":
            return None
        obj = json.loads(data)
        if self.provider == "openai":
            choices = obj["choices"]
            return choices[0]["delta"].get("content") if choices else None
        if obj["type"] == "content_block_delta" and obj["delta"]["type"] == "text_delta":
            return str(obj["delta"]["text"])
        return None


class RawHttpx(_Raw):
    name = "raw-httpx"

    async def open(self, base_url: str, provider: str) -> None:
        import httpx

        self._setup(base_url, provider)
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_IDLE)
        self.client = httpx.AsyncClient(limits=limits, timeout=60)

    async def chat(self) -> str:
        response = await self.client.post(self.chat_url, content=json.dumps(self.body).encode(), headers=self.headers)
        response.raise_for_status()
        return self._text(json.loads(response.content))

    async def stream(self) -> tuple[str, float | None]:
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        async with self.client.stream("POST", self.chat_url, content=json.dumps(self.stream_body).encode(),
                                      headers=self.headers) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                delta = self._delta(line)
                if delta:
                    if first is None:
                        first = time.perf_counter() - started
                    parts.append(delta)
        return "".join(parts), first

    async def embed(self, inputs: list[str]) -> list[list[float]]:
        response = await self.client.post(self.embed_url, content=self._embed_body(inputs), headers=self.headers)
        response.raise_for_status()
        return self._vectors(json.loads(response.content))

    async def close(self) -> None:
        await self.client.aclose()


class RawAiohttp(_Raw):
    name = "raw-aiohttp"

    async def open(self, base_url: str, provider: str) -> None:
        import aiohttp

        self._setup(base_url, provider)
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
                                             timeout=aiohttp.ClientTimeout(total=60))

    async def chat(self) -> str:
        async with self.session.post(self.chat_url, data=json.dumps(self.body).encode(),
                                     headers=self.headers) as response:
            response.raise_for_status()
            return self._text(json.loads(await response.read()))

    async def stream(self) -> tuple[str, float | None]:
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        async with self.session.post(self.chat_url, data=json.dumps(self.stream_body).encode(),
                                     headers=self.headers) as response:
            response.raise_for_status()
            async for raw in response.content:  # one line per iteration
                delta = self._delta(raw.decode().rstrip("\r\n"))
                if delta:
                    if first is None:
                        first = time.perf_counter() - started
                    parts.append(delta)
        return "".join(parts), first

    async def embed(self, inputs: list[str]) -> list[list[float]]:
        async with self.session.post(self.embed_url, data=self._embed_body(inputs), headers=self.headers) as response:
            response.raise_for_status()
            return self._vectors(json.loads(await response.read()))

    async def close(self) -> None:
        await self.session.close()


class OpenAISDK(Contender):
    name = "openai-sdk"
    providers = ("openai",)

    async def open(self, base_url: str, provider: str) -> None:
        from openai import AsyncOpenAI

        self.client = AsyncOpenAI(api_key=KEY, base_url=base_url + "/v1")

    async def chat(self) -> str:
        response = await self.client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        return str(response.choices[0].message.content)

    async def stream(self) -> tuple[str, float | None]:
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        stream = await self.client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True})  # type: ignore[arg-type]
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    if first is None:
                        first = time.perf_counter() - started
                    parts.append(chunk.choices[0].delta.content)
        return "".join(parts), first

    async def embed(self, inputs: list[str]) -> list[list[float]]:
        response = await self.client.embeddings.create(model=EMBED_MODEL, input=inputs)
        return [list(item.embedding) for item in response.data]

    async def close(self) -> None:
        await self.client.close()


class LiteLLM(Contender):
    name = "litellm"
    providers = ("openai",)

    async def open(self, base_url: str, provider: str) -> None:
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        self.litellm = litellm
        self.api_base = base_url + "/v1"

    async def chat(self) -> str:
        response = await self.litellm.acompletion(model="openai/" + MODEL, messages=MESSAGES, api_base=self.api_base,
                                                  api_key=KEY)
        return str(response.choices[0].message.content)

    async def stream(self) -> tuple[str, float | None]:
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        stream = await self.litellm.acompletion(model="openai/" + MODEL, messages=MESSAGES, api_base=self.api_base,
                                                api_key=KEY, stream=True, stream_options={"include_usage": True})
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if first is None:
                    first = time.perf_counter() - started
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts), first

    async def embed(self, inputs: list[str]) -> list[list[float]]:
        response = await self.litellm.aembedding(model="openai/" + EMBED_MODEL, input=inputs, api_base=self.api_base,
                                                 api_key=KEY)
        return [list(item["embedding"]) for item in response.data]


def make(name: str) -> Contender:
    factories: dict[str, Any] = {
        "ours-httpx": lambda: Ours("httpx"), "ours-aiohttp": lambda: Ours("aiohttp"),
        "raw-httpx": RawHttpx, "raw-aiohttp": RawAiohttp, "openai-sdk": OpenAISDK, "litellm": LiteLLM,
    }
    return factories[name]()  # type: ignore[no-any-return]


ALL = ("ours-httpx", "ours-aiohttp", "raw-httpx", "raw-aiohttp", "openai-sdk", "litellm")
#: What each contender needs importable (the runner skips the ones that are missing).
NEEDS = {"ours-httpx": "httpx", "ours-aiohttp": "aiohttp", "raw-httpx": "httpx", "raw-aiohttp": "aiohttp",
         "openai-sdk": "openai", "litellm": "litellm"}
