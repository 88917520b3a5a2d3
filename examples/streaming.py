"""Streaming: text as it is generated, the accumulated response, and stopping early.

    python examples/streaming.py          # any usable provider; offline with the local extra

``async with`` closes the stream however the loop ends, so leaving early stops the provider
(or the local model) from generating the rest. A stream that breaks after text has arrived
raises ``StreamInterruptedError`` carrying exactly the text delivered, never a duplicate.
"""

from __future__ import annotations

import sys

import anyio

import llm_connectors as lc

STORY = [{"role": "user", "content": "Write a short poem about the sea."}]


async def main() -> int:
    try:
        conn = await lc.get_connector("auto")
    except lc.NoProviderAvailableError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    async with conn:
        # 1. The whole answer, chunk by chunk; then the same ChatResponse a plain call would give.
        async with conn.generate_chat_stream(None, STORY, max_tokens=80) as stream:
            async for chunk in stream:
                print(chunk.delta, end="", flush=True)
                if chunk.finish_reason:  # only the last chunk carries it (and the usage)
                    print(f"\n[finish: {chunk.finish_reason}]")
        resp = stream.response
        print(f"[{resp.provider}/{resp.model}: {len(resp.content)} characters, "
              f"{resp.usage.output_tokens} tokens]")

        # 2. Stop after a few words: leaving the `async with` closes the stream.
        words = []
        try:
            async with conn.generate_chat_stream(None, STORY, max_tokens=200) as stream:
                async for chunk in stream:
                    words.append(chunk.delta)
                    if len("".join(words).split()) >= 5:
                        break
        except lc.StreamInterruptedError as exc:  # the provider broke mid-stream
            print(f"interrupted after: {exc.partial!r}")
        print(f"stopped early after: {''.join(words)!r}")

        # 3. collect(): drain a stream into the ChatResponse when you only want the end result.
        full = await conn.generate_chat_stream(None, "Say hello.", max_tokens=20).collect()
        print(f"collected: {full.content!r}")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
