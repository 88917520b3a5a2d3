"""What a provider's response headers say: how long to wait, whether to retry, the request id."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Iterable, Mapping

import httpx

__all__ = ["first_header", "parse_retry_after", "should_retry_header"]


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, then ``retry-after``.

    ``retry-after`` may be a (possibly fractional) number of seconds or an HTTP date.
    Anything unparseable, negative, NaN or infinite gives ``None``; never raises.
    """
    try:
        value = headers.get("retry-after-ms")
        if value:
            ms = float(value)
            if math.isfinite(ms) and ms >= 0:
                return ms / 1000.0
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                return None
            seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
        if not math.isfinite(seconds):
            return None
        return max(0.0, seconds)
    except (ValueError, OverflowError, TypeError):
        return None


def should_retry_header(headers: Mapping[str, str]) -> bool | None:
    """The provider's explicit ``x-should-retry`` verdict, if it sent one."""
    value = headers.get("x-should-retry")
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def first_header(headers: httpx.Headers | Mapping[str, str], names: Iterable[str]) -> str | None:
    for name in names:
        value = headers.get(name)
        if value:
            return value
    return None
