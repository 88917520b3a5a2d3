"""What a provider's rate-limit headers say is left, read defensively (pure: headers in, values out).

OpenAI (and OpenAI-compatible services): ``x-ratelimit-remaining-{requests,tokens}`` with
``x-ratelimit-reset-{requests,tokens}`` as Go durations (``1s``, ``6m0s``, ``20ms``): the time
until the limit is whole again. Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,
output-tokens}-{remaining,reset}`` with RFC 3339 reset times (token counts rounded to thousands).
Mistral sends ``x-ratelimit-remaining-{req,tokens}-minute`` without a reset time, so there is
nothing to pace on; its 429s carry ``retry-after``, which the limiter honours anyway.

Header values come from outside: anything unreadable is ignored, and no reset is trusted beyond
one minute (a daily limit's reset would otherwise pause a process for hours on one odd header).
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple

__all__ = ["Headroom", "headroom", "parse_reset"]

MAX_RESET = 60.0  # seconds: never trust a reset beyond one window

Kind = Literal["requests", "tokens"]

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_COUNT = re.compile(r"\d{1,15}(?:\.\d+)?")

_PAIRS: list[tuple[Kind, str, str]] = [
    ("requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
    ("tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
    ("requests", "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"),
    ("tokens", "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"),
    ("tokens", "anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset"),
    ("tokens", "anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset"),
]


class Headroom(NamedTuple):
    """One limit as the provider reported it: ``remaining`` units until it is whole again in ``reset`` s."""

    kind: Kind
    remaining: float
    reset: float

    @property
    def interval(self) -> float:
        """Seconds per unit that spread what is left evenly until the reset (``inf``: nothing left)."""
        return math.inf if self.remaining <= 0 else self.reset / self.remaining


def parse_reset(value: str, *, now: float | None = None) -> float | None:
    """Seconds until a rate-limit reset: Go durations (``1.5s``, ``6m0s``, ``12ms``), plain seconds,
    or an RFC 3339 / HTTP date (``now``: the wall clock, for tests). ``None`` when unreadable."""
    value = value.strip()
    if not value or len(value) > 64:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    parts = _GO_DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        return sum(float(n) * _UNITS[u] for n, u in parts)
    wall = time.time() if now is None else now
    try:
        return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - wall)
    except (ValueError, OverflowError, OSError):
        pass
    parsed = email.utils.parsedate_tz(value)
    return None if parsed is None else max(0.0, email.utils.mktime_tz(parsed) - wall)


def headroom(headers: Mapping[str, Any], *, now: float | None = None) -> list[Headroom]:
    """Every readable (remaining, reset) pair in ``headers``; resets capped at :data:`MAX_RESET`."""
    found = []
    for kind, remaining_name, reset_name in _PAIRS:
        remaining, reset = headers.get(remaining_name), headers.get(reset_name)
        if remaining is None or reset is None or not _COUNT.fullmatch(str(remaining).strip()):
            continue
        seconds = parse_reset(str(reset), now=now)
        if seconds is not None:
            found.append(Headroom(kind, float(str(remaining).strip()), min(seconds, MAX_RESET)))
    return found
