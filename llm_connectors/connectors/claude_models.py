"""Reading Claude's model list (``GET /v1/models``) and token counts: the answer shapes and their parsing.

Answers are untrusted: each is checked against the shape Anthropic documents (only the fields we
read) and a wrong one is a ``ProtocolError``. Times we cannot read are left out, not refused.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..types import ModelInfo
from ..wire.shapes import Count, Shape, conform
from .claude_stream import Name

__all__ = ["ModelPage", "TokenCount", "parse_model_page"]


class _Model(Shape):
    id: Name
    display_name: str | None = None
    created_at: str | None = None  # RFC 3339; a date we cannot read is left out, not refused
    max_input_tokens: Count | None = None
    max_tokens: Count | None = None
    lifecycle: str | None = None  # active | deprecated | retired (anthropic 2.x ModelInfo)
    deprecated_at: str | None = None
    retires_at: str | None = None


class ModelPage(Shape):
    """``GET /v1/models``: one page of the model list (WIRE.md §1.5; only the fields we read)."""

    data: list[_Model]
    has_more: bool | None = None
    last_id: str | None = None


class TokenCount(Shape):
    """``POST /v1/messages/count_tokens``: the input tokens of the request."""

    input_tokens: Count


def parse_model_page(data: Any, provider: str) -> tuple[list[ModelInfo], str | None]:
    """One page of models and the cursor of the next (``None`` when done).

    ``lifecycle``, ``deprecated_at`` and ``retires_at`` (anthropic 2.x) become ``deprecated``,
    ``deprecated_on`` and ``retires_on``; ``max_tokens`` the output limit.
    """
    page = conform(data, ModelPage, provider=provider, what="model list")
    models = [
        ModelInfo(id=item.id, name=item.display_name or item.id, created=_unix_time(item.created_at),
                  context_length=item.max_input_tokens, raw=record, max_output_tokens=item.max_tokens,
                  deprecated=item.lifecycle in ("deprecated", "retired") or bool(item.deprecated_at),
                  deprecated_on=_iso_date(item.deprecated_at), retires_on=_iso_date(item.retires_at))
        for item, record in zip(page.data, data["data"], strict=True)
    ]
    cursor = None
    if page.has_more:
        # Next page: after_id = last_id (WIRE.md §1.5); a page without it cannot be continued.
        cursor = page.last_id or (models[-1].id if models else None)
    return models, cursor


def _iso_date(value: str | None) -> str | None:
    """The ``YYYY-MM-DD`` of an RFC 3339 time (UTC); ``None`` when absent or unreadable."""
    seconds = _unix_time(value)
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).date().isoformat()


def _unix_time(value: str | None) -> int | None:
    """RFC 3339 (``2025-02-19T00:00:00Z``) to Unix seconds; ``None`` when absent or unreadable."""
    if not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    head, dot, rest = text.partition(".")
    if dot:  # Python 3.10 reads at most 6 fractional digits; seconds are all we keep anyway
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + rest[digits:]
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except (ValueError, OverflowError, OSError):  # the last two: a year the platform cannot convert
        return None
