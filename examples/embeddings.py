"""Embeddings: vectors for a few texts, and which one is closest to a question.

    python examples/embeddings.py         # any provider with embeddings; offline with the local extra

``generate_embedding`` takes one text or a list and keeps the input order. In an "auto" chain,
providers without embeddings (Claude) are skipped. Large lists are split into the provider's
batch size and sent concurrently.
"""

from __future__ import annotations

import math
import sys

import anyio

import llm_connectors as lc

DOCUMENTS = [
    "The Eiffel Tower is in Paris.",
    "Photosynthesis turns sunlight into chemical energy.",
    "The stock market fell sharply on Tuesday.",
]
QUESTION = "Where is the Eiffel Tower?"


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


async def main() -> int:
    try:
        conn = await lc.get_connector("auto")
    except lc.NoProviderAvailableError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    async with conn:
        docs = await conn.generate_embedding(None, DOCUMENTS)
        query = await conn.generate_embedding(None, QUESTION)
    print(f"[{docs.provider}/{docs.model}] {len(docs.embeddings)} vectors of {len(docs.embeddings[0])} numbers, "
          f"{docs.usage.input_tokens} tokens")
    scores = sorted(((cosine(query.embeddings[0], vector), text)
                     for vector, text in zip(docs.embeddings, DOCUMENTS, strict=True)), reverse=True)
    print(f"closest to {QUESTION!r}:")
    for score, text in scores:
        print(f"  {score:.3f}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
