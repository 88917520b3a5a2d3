"""Where a connector's key comes from: one static key, several used in turn, or a callable.

    api_key="sk-..."                         one key
    api_key=["sk-a", "sk-b"]                 used in turn; a key answered with 401/403 or a quota
                                             error is set aside (and reported), the others carry on
    api_key=vault.current_token              called per request (sync or async): rotated secrets,
                                             OAuth/JWT-issued tokens

Keys are held as :class:`Secret`; a callable's keys are validated on every call and remembered
briefly so error messages can be scrubbed of them. Nothing here ever logs a key, only a
fingerprint.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._secrets import Secret, check_header_value
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    LLMConnectorError,
    PermissionDeniedError,
    QuotaExceededError,
)

__all__ = ["Credentials", "KeySource"]

logger = logging.getLogger("llm_connectors.credentials")

KeyCallable = Callable[[], str | Secret | Awaitable[str | Secret]]
#: What ``api_key=`` accepts.
KeySource = str | Secret | Sequence[str | Secret] | KeyCallable | None
_SET_ASIDE_BY = (AuthenticationError, PermissionDeniedError, QuotaExceededError)


class Credentials:
    """The keys of one connector."""

    def __init__(self, source: KeySource, *, provider: str) -> None:
        self.provider = provider
        self._callable: KeyCallable | None = None
        self._keys: list[Secret] = []
        self._set_aside: dict[str, str] = {}  # fingerprint -> why
        self._recent: deque[Secret] = deque(maxlen=8)  # keys a callable produced lately
        self._next = 0
        self._lock = threading.Lock()
        if source is None:
            return
        if isinstance(source, (str, Secret)):
            self._keys = [self._checked(source)]
        elif callable(source):
            self._callable = source
        elif isinstance(source, Sequence) and source:
            self._keys = [self._checked(item) for item in source]
            if len({k.fingerprint() for k in self._keys}) != len(self._keys):
                raise ConfigurationError("api_key lists the same key twice", provider=provider)
        else:
            raise ConfigurationError(
                "api_key must be a string, a non-empty list of strings, or a callable returning the key",
                provider=provider)

    def _checked(self, value: Any) -> Secret:
        if not isinstance(value, (str, Secret)):
            raise ConfigurationError(f"an API key must be a str, got {type(value).__name__}", provider=self.provider)
        secret = Secret(value)
        check_header_value("api_key", secret.reveal(), secret=True)
        return secret

    @property
    def configured(self) -> bool:
        return bool(self._keys) or self._callable is not None

    @property
    def primary(self) -> Secret | None:
        """The first static key (``None`` for a callable source)."""
        return self._keys[0] if self._keys else None

    @property
    def static(self) -> bool:
        return self._callable is None and len(self._keys) <= 1

    async def current(self) -> Secret | None:
        """The key for the next request."""
        if self._callable is not None:
            value = self._callable()
            if inspect.isawaitable(value):
                value = await value
            secret = self._checked(value)
            self._recent.append(secret)
            return secret
        keys = self._keys
        if len(keys) <= 1:
            return keys[0] if keys else None
        with self._lock:
            active = [k for k in keys if k.fingerprint() not in self._set_aside]
            if not active:
                raise AuthenticationError(
                    f"every one of the {len(keys)} API keys was set aside after being refused "
                    f"({', '.join(sorted(set(self._set_aside.values())))}); fix or replace the keys",
                    provider=self.provider)
            key = active[self._next % len(active)]
            self._next += 1
            return key

    def report(self, key: Secret | None, error: LLMConnectorError) -> None:
        """A request made with ``key`` failed with ``error``: set a refused key aside (key lists)."""
        if key is None or len(self._keys) <= 1 or not isinstance(error, _SET_ASIDE_BY):
            return
        fingerprint = key.fingerprint()
        with self._lock:
            if fingerprint in self._set_aside:
                return
            self._set_aside[fingerprint] = type(error).__name__
            remaining = sum(1 for k in self._keys if k.fingerprint() not in self._set_aside)
        logger.warning("%s: key %s set aside after %s; %d of %d keys remain", self.provider, fingerprint,
                       type(error).__name__, remaining, len(self._keys))
        if remaining:
            error.retryable = True  # the same call can succeed with the next key

    def secrets(self) -> list[Secret]:
        """Every key known to this source (for scrubbing provider messages)."""
        return [*self._keys, *self._recent]

    def fingerprint(self) -> str | None:
        """Identifies the tenant for cache keys: the first key's fingerprint (or the callable's id)."""
        if self._keys:
            return self._keys[0].fingerprint()
        if self._callable is not None:
            return f"callable:{id(self._callable):x}"
        return None

    def snapshot(self) -> dict[str, Any]:
        return {"keys": len(self._keys) or (1 if self._callable else 0),
                "set_aside": dict(self._set_aside)} if len(self._keys) > 1 else {}
