"""The resilience layers around one connector, in the fixed order of STYLE.md:

    (fallback →) retry → circuit breaker → rate limiter → connector → transport

Retry sits outside the breaker, so an open circuit ends retrying at once and a fallback chain
moves on. The open-circuit check runs before the limiter, so a dead provider never holds a
rate-limit slot; limiter waits are outside the breaker's accounting. Streams pass through
these layers only until their first chunk; after that a failure is recorded on the breaker and
the limiter's reservation is reconciled when the stream ends.

Breakers, retry budgets and 429 cooldowns are shared per (provider, base URL) by every
connector in the process; rate limiters per event loop, since anyio primitives are loop-bound.
With ``shared_state`` (a Redis URL) rate limits, 429 cooldowns, the open state of circuits and
their half-open probe are shared by every process using that Redis (see ``shared.py``); each
process still counts its own breaker failures and keeps ``max_concurrency`` to itself.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .. import catalog
from .._asynclib import current_loop_token
from ..errors import LLMConnectorError, RateLimitError
from ..observe.calls import CURRENT_CALL
from ..requests import ChatRequest, EmbeddingRequest
from ..stream import OpenStream
from ..tokens import estimate_input_tokens, estimate_text_tokens
from ..types import ChatResponse, Usage
from .breaker import Breaker
from .config import CircuitBreakerConfig, RateLimit, RetryPolicy, coerce
from .ratelimit import Cooldown, Permit, RateLimiter
from .retry import RetryBudget, call_with_retries

if TYPE_CHECKING:
    from ..observe.stats import ProviderStats
    from .shared import SharedState
    from .shared_breaker import SharedBreaker

__all__ = ["Resilience", "reset_shared_state"]

R = TypeVar("R")

_lock = threading.Lock()
_breakers: dict[tuple[Any, ...], Breaker] = {}
_budgets: dict[tuple[str, str], RetryBudget] = {}
_cooldowns: dict[tuple[Any, ...], tuple[object, Cooldown]] = {}
_limiters: dict[tuple[Any, ...], tuple[object, RateLimiter]] = {}
_shared_breakers: dict[tuple[Any, ...], SharedBreaker] = {}


def reset_shared_state() -> None:
    """Forget every breaker, budget, cooldown and limiter, and close Redis links (tests; after reconfiguring).

    State kept in Redis stays there: this only resets what the process holds.
    """
    with _lock:
        _breakers.clear()
        _budgets.clear()
        _cooldowns.clear()
        _limiters.clear()
        _shared_breakers.clear()
    from .cache import reset_caches

    reset_caches()
    shared = sys.modules.get(f"{__package__}.shared")  # only ever imported once shared_state was used
    if shared is not None:
        shared.reset_links()


def _loop_scoped(table: dict[tuple[Any, ...], tuple[object, Any]], key: tuple[Any, ...],
                 make: Callable[[], Any]) -> Any:
    loop = current_loop_token()
    full = (id(loop), *key)
    with _lock:
        found = table.get(full)
        if found is None or found[0] is not loop:
            found = table[full] = (loop, make())
        return found[1]


class Resilience:
    """Retry, breaker and limiter settings of one connector, bound to the shared state.

    Args:
        provider: Provider id (for errors and metrics).
        base_url: The endpoint; shared state is keyed by (provider, base_url).
        retry: :class:`RetryPolicy`, a dict of its fields, ``True``/``None`` (defaults) or ``False``.
        circuit_breaker: :class:`CircuitBreakerConfig`, a dict, ``True``/``None`` (defaults) or ``False``.
        rate_limit: :class:`RateLimit` or a dict; ``None``/``False``: none (429 cooldowns still apply).
        stats: The connector's counters (retries, limiter waits).
        shared_state: A Redis URL, a :class:`~.shared.SharedState` or a dict of its fields: share
            rate limits, cooldowns and circuit state with every process using that Redis.
    """

    def __init__(self, provider: str, base_url: str, *, retry: Any = None, circuit_breaker: Any = None,
                 rate_limit: Any = None, stats: ProviderStats | None = None, shared_state: Any = None) -> None:
        self.provider = provider
        self.base_url = base_url
        self.retry_policy = RetryPolicy() if retry is None else coerce(RetryPolicy, retry, what="retry")
        self.breaker_config = (CircuitBreakerConfig() if circuit_breaker is None
                               else coerce(CircuitBreakerConfig, circuit_breaker, what="circuit_breaker"))
        self.rate_limit = coerce(RateLimit, rate_limit, what="rate_limit")
        self.stats = stats
        self._key = (provider, base_url)
        self.shared_state: SharedState | None = None
        if shared_state is not None and shared_state is not False:
            from .shared import coerce_shared_state  # the Redis machinery loads only when asked for

            self.shared_state = coerce_shared_state(shared_state)

    # -- shared state --------------------------------------------------------------------------

    @property
    def breaker(self) -> Breaker | None:
        config = self.breaker_config
        if config is None:
            return None
        key = (*self._key, config)
        breaker = _breakers.get(key)
        if breaker is None:
            with _lock:
                breaker = _breakers.setdefault(key, Breaker(f"{self.provider}@{self.base_url}", config))
        return breaker

    @property
    def budget(self) -> RetryBudget | None:
        if self.retry_policy is None or not self.retry_policy.budget:
            return None
        budget = _budgets.get(self._key)
        if budget is None:
            with _lock:
                budget = _budgets.setdefault(self._key, RetryBudget())
        return budget

    @property
    def shared_breaker(self) -> SharedBreaker | None:
        """The fleet-wide side of the breaker (``None`` without ``shared_state`` or a breaker)."""
        shared, local = self.shared_state, self.breaker
        if shared is None or local is None:
            return None
        from .shared import scope_for
        from .shared_breaker import SharedBreaker

        key = (*self._key, self.breaker_config, shared)
        scope = scope_for(shared, *self._key)
        found = _shared_breakers.get(key)
        if found is None or found.scope is not scope:  # a new link (after a fork or a reset)
            with _lock:
                found = _shared_breakers.get(key)
                if found is None or found.scope is not scope:
                    if found is not None:
                        found.detach()
                    found = _shared_breakers[key] = SharedBreaker(local, scope)
        return found

    def limiter(self) -> RateLimiter:
        cooldown: Cooldown = _loop_scoped(_cooldowns, self._key, Cooldown)
        shared = self.shared_state
        if shared is not None:
            from .shared import scope_for
            from .shared_limiter import SharedRateLimiter

            return _loop_scoped(  # type: ignore[no-any-return]
                _limiters, (*self._key, self.rate_limit, shared),
                lambda: SharedRateLimiter(self.provider, self.rate_limit, cooldown, scope_for(shared, *self._key)))
        return _loop_scoped(_limiters, (*self._key, self.rate_limit),  # type: ignore[no-any-return]
                            lambda: RateLimiter(self.provider, self.rate_limit, cooldown))

    # -- running -------------------------------------------------------------------------------

    async def call(self, attempt: Callable[[Any], Awaitable[R]], request: ChatRequest | EmbeddingRequest) -> R:
        """Run a non-streaming call through retry → breaker → limiter → attempt."""
        return await self._run(attempt, request, lambda result, admitted: admitted.succeeded(
            _total_tokens(getattr(result, "usage", None))))

    async def open_stream(self, attempt: Callable[[ChatRequest], Awaitable[OpenStream]],
                          request: ChatRequest) -> OpenStream:
        """Open a stream through the layers; they act only until its first chunk, then settle when it ends."""
        return await self._run(attempt, request, lambda stream, admitted: stream.on_finish.append(
            admitted.stream_finished))

    async def _run(self, attempt: Callable[[Any], Awaitable[R]], request: ChatRequest | EmbeddingRequest,
                   settle: Callable[[R, _Admitted], None]) -> R:
        """Retry ``attempt``; each try is admitted (circuit, fleet, rate limit), then settled by ``settle``."""
        tokens = self._reservation(request)

        async def once() -> R:
            limiter = self.limiter()
            admitted = await self._enter(limiter, self.breaker, self.shared_breaker, tokens, request.deadline)
            try:
                result = await attempt(request)
            except BaseException as exc:
                admitted.failed(exc)
                self._after_error(limiter, exc)
                raise
            settle(result, admitted)
            return result

        return await self._with_retries(once, request.deadline)

    async def _enter(self, limiter: RateLimiter, breaker: Breaker | None, shared: SharedBreaker | None,
                     tokens: int, deadline: float | None) -> _Admitted:
        """Admit one attempt: circuit here, circuit in the fleet, rate limit, then the probe gate.

        Whatever fails gives back what was taken before it.
        """
        if breaker is not None:
            breaker.check()
        lease = await shared.admit(deadline) if shared is not None else None
        try:
            permit = await self._admit(limiter, tokens, deadline)
        except BaseException:
            if shared is not None:
                shared.finish(lease, None, finished=False)
            raise
        try:
            probe = breaker.begin() if breaker is not None else False
        except BaseException:
            permit.refund()
            permit.release()
            if shared is not None:
                shared.finish(lease, None, finished=False)
            raise
        return _Admitted(permit, breaker, shared, probe, lease)

    async def _with_retries(self, once: Callable[[], Awaitable[R]], deadline: float | None) -> R:
        policy = self.retry_policy
        if policy is None or policy.max_retries == 0:
            return await once()
        return await call_with_retries(once, policy=policy, deadline=deadline, budget=self.budget,
                                       on_retry=self._count_retry)

    async def _admit(self, limiter: RateLimiter, tokens: int, deadline: float | None) -> Permit:
        permit = await limiter.acquire(tokens, deadline)
        if permit.waits:  # stats, the hooks' context and the call's span see the wait, by limit
            call = CURRENT_CALL.get()
            if call is not None:
                call.limiter_waited(permit.waits)
            elif self.stats is not None:
                self.stats.record_limiter_wait(permit.waits)
        return permit

    def observe_headers(self, headers: Mapping[str, Any]) -> None:
        """Show a response's headers to the limiter (``adapt_to_headers``); count the slowdowns."""
        if self.limiter().observe_headers(headers) and self.stats is not None:
            self.stats.slowdowns += 1

    def _after_error(self, limiter: RateLimiter, error: BaseException) -> None:
        # A provider 429 with Retry-After pauses this provider for every caller in the process
        # (and, with shared state, in every process).
        if isinstance(error, RateLimitError) and error.status_code == 429 and error.retry_after:
            limiter.note_retry_after(error.retry_after)

    def _count_retry(self, error: LLMConnectorError, wait: float) -> None:
        if self.stats is not None:
            self.stats.retries += 1

    def _reservation(self, request: ChatRequest | EmbeddingRequest) -> int:
        """Tokens a call reserves: a rough input estimate plus its output allowance."""
        config = self.rate_limit
        if config is None or config.tokens_per_minute is None:
            return 0
        info = catalog.entry(self.provider, request.model)
        per_token = info.chars_per_token if info is not None else None
        if isinstance(request, EmbeddingRequest):
            return estimate_text_tokens(request.inputs, per_token)
        output = request.params.get("max_tokens") or config.default_output_tokens
        return estimate_input_tokens(request.messages, request.params, per_token) + int(output)

    def snapshot(self) -> dict[str, Any]:
        """Breaker state and budget, for ``stats()``."""
        breaker = self.breaker
        budget = self.budget
        snapshot: dict[str, Any] = {
            "breaker": breaker.snapshot() if breaker is not None else None,
            "retry_budget": budget.tokens if budget is not None else None,
        }
        if self.shared_state is not None:
            from .shared import link_for

            snapshot["shared_state"] = link_for(self.shared_state).snapshot()
            shared = self.shared_breaker
            if shared is not None and snapshot["breaker"] is not None:
                snapshot["breaker"].update(shared.snapshot())
        return snapshot


class _Admitted:
    """One admitted attempt: its rate-limit permit, whether it is the half-open probe (here and in
    the fleet), and how its outcome is recorded once, whichever way it ends."""

    __slots__ = ("breaker", "lease", "permit", "probe", "shared")

    def __init__(self, permit: Permit, breaker: Breaker | None, shared: SharedBreaker | None, probe: bool,
                 lease: str | None) -> None:
        self.permit = permit
        self.breaker = breaker
        self.shared = shared
        self.probe = probe
        self.lease = lease

    def failed(self, error: BaseException) -> None:
        self._end(error)
        self.permit.refund()
        self.permit.release()

    def succeeded(self, tokens: int | None) -> None:
        self.permit.release()
        self._end(None)
        self.permit.reconcile(tokens)

    def stream_finished(self, response: ChatResponse | None, error: BaseException | None) -> None:
        self.permit.release()
        if response is not None:
            self.permit.reconcile(_total_tokens(response.usage))
            self._end(None)
        elif isinstance(error, LLMConnectorError):
            # A stream broken mid-way is recorded by what broke it, not by the wrapper.
            self._end(error.__cause__ if isinstance(error.__cause__, LLMConnectorError) else error)
        else:  # abandoned by the caller, or cancelled: neutral
            self._end(error, finished=False)

    def _end(self, outcome: BaseException | None, *, finished: bool = True) -> None:
        """Record the outcome on the local breaker, then on the fleet's probe."""
        try:
            if self.breaker is not None:
                self.breaker.end(self.probe, outcome, finished=finished)
        finally:
            if self.shared is not None:
                self.shared.finish(self.lease, outcome, finished=finished)


def _total_tokens(usage: Usage | None) -> int | None:
    if usage is None:
        return None
    if usage.total_tokens is not None:
        return usage.total_tokens
    if usage.input_tokens is None and usage.output_tokens is None:
        return None
    return (usage.input_tokens or 0) + (usage.output_tokens or 0)
