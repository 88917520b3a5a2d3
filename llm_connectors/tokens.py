"""Input-token estimates, where a provider cannot count for us.

One estimate serves two readers: :meth:`BaseConnector.count_tokens` (labelled ``exact=False``
where the provider has no counting endpoint) and the tokens-per-minute limiter's reservation
(reconciled with the real usage when the answer arrives). Characters per token differ by
tokenizer: the catalog's ``chars_per_token`` says it per model (Claude's Sonnet 5 family counts
about 30 % more tokens for the same text than the 4 characters per token of older tokenizers).
Hand-written rather than a tokenizer library: no provider publishes its current tokenizer, and
a reservation only needs to be close and cheap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .types import Message

__all__ = ["DEFAULT_CHARS_PER_TOKEN", "estimate_input_tokens", "estimate_text_tokens"]

#: Characters per token when the catalog does not say (English text, BPE tokenizers of 2024-2025).
DEFAULT_CHARS_PER_TOKEN = 4.0
_PER_MESSAGE = 16  # role markers and separators, in characters


def estimate_text_tokens(texts: Iterable[str], chars_per_token: float | None = None) -> int:
    """Tokens in plain texts (embedding inputs)."""
    return int(sum(len(text) for text in texts) / (chars_per_token or DEFAULT_CHARS_PER_TOKEN)) + 1


def estimate_input_tokens(messages: Sequence[Message], params: Mapping[str, Any],
                          chars_per_token: float | None = None) -> int:
    """Tokens a chat request's input is likely to count: the text, a per-message overhead and the tools."""
    chars = sum(len(m.text) for m in messages) + _PER_MESSAGE * len(messages)
    tools = params.get("tools")
    if tools:
        chars += len(json.dumps(tools))
    return int(chars / (chars_per_token or DEFAULT_CHARS_PER_TOKEN)) + 1
