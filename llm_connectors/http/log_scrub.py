"""Keys cut out of the HTTP libraries' own log records.

httpcore's DEBUG trace logs each response head verbatim, and a server may echo the key into a
header (a request id, say). Our own logs scrub every message; these are records httpx and httpcore
create, so a filter on their loggers scrubs them: every key of every live connector, in every
spelling :func:`~llm_connectors._secrets.scrub` knows. The filter only runs for records those
loggers actually emit (DEBUG is off by default), so it costs nothing otherwise.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from typing import Protocol

from .._secrets import Secret, scrub

__all__ = ["watch_logs_for"]

#: The loggers httpx and httpcore create records on (a filter is not inherited by child loggers).
LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy", "httpcore.socks")


class HoldsSecrets(Protocol):
    def secrets(self) -> Iterable[Secret]: ...


class _Scrubber(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.holders: weakref.WeakSet[HoldsSecrets] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        held = [secret for holder in list(self.holders) for secret in holder.secrets()]
        if held:
            message = record.getMessage()
            clean = scrub(message, held)
            if clean != message:
                record.msg, record.args = clean, ()
        return True


_scrubber: _Scrubber | None = None
_lock = threading.Lock()


def watch_logs_for(holder: HoldsSecrets) -> None:
    """Scrub ``holder``'s keys from httpx's and httpcore's log records for as long as it lives."""
    global _scrubber
    with _lock:
        if _scrubber is None:
            _scrubber = _Scrubber()
            for name in LOGGERS:
                logging.getLogger(name).addFilter(_scrubber)
        _scrubber.holders.add(holder)
