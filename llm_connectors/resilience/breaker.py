"""Circuit breakers on pybreaker, used in a way that is correct under anyio.

pybreaker cannot await (its ``call_async`` needs Tornado). Rather than holding
``breaker.calling()`` open across an ``await``, each call is admitted first and its outcome is
recorded once it is known, with a synchronous ``with breaker.calling(): raise error``. That
also fixes what pybreaker gets wrong for us (RELIABILITY.md §2.7):

* client errors and 429s must not count: an ``exclude`` predicate keeps only provider-health
  failures;
* cancellations must be neutral: they are never recorded (pybreaker would count them, and its
  ``exclude`` would count them as successes that reset the failure streak);
* half-open must admit one probe at a time: :meth:`Breaker.begin` gates it;
* a stream is one call: its outcome is recorded when it ends, so a stream that opens and then
  breaks counts as one failure, not as a success followed by a failure.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from functools import cache
from typing import TYPE_CHECKING, Any

from ..errors import CircuitOpenError, LLMConnectorError
from .config import CircuitBreakerConfig

if TYPE_CHECKING:
    import pybreaker

__all__ = ["Breaker"]

logger = logging.getLogger("llm_connectors.breaker")


def _not_a_health_failure(error: BaseException) -> bool:
    """pybreaker ``exclude`` predicate: only provider-health failures may open the circuit."""
    return not (isinstance(error, LLMConnectorError) and error.breaker_failure)


def _load_pybreaker() -> None:
    """Import pybreaker without the Redis client it would otherwise load (callers then ``import
    pybreaker``, a plain lookup from then on).

    pybreaker imports ``redis`` at import time, when installed, only to offer a Redis storage we
    never use (shared state has its own, see ``shared.py``); recent redis clients import
    OpenTelemetry's SDK in turn: about 100 ms and 12 MiB for every process with redis installed.
    Unless the application has imported redis already, ``redis`` is hidden while pybreaker loads
    (pybreaker then just disables its Redis storage). The global import lock is held meanwhile, so
    no other thread can import redis and find it hidden.
    """
    if "pybreaker" in sys.modules:
        return
    import _imp

    _imp.acquire_lock()
    try:
        if "redis" in sys.modules:  # already paid for by the application
            import pybreaker
        else:
            sys.modules["redis"] = None  # type: ignore[assignment]  # makes "import redis" fail
            try:
                import pybreaker  # noqa: F401
            finally:
                del sys.modules["redis"]
    finally:
        _imp.release_lock()


@cache
def _listener_class() -> Callable[[Breaker], pybreaker.CircuitBreakerListener]:
    """pybreaker is imported with the first breaker, not with this module (see _load_pybreaker)."""
    _load_pybreaker()
    import pybreaker

    class _Listener(pybreaker.CircuitBreakerListener):
        def __init__(self, owner: Breaker) -> None:
            self.owner = owner

        def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
            old, new = getattr(old_state, "name", str(old_state)), getattr(new_state, "name", str(new_state))
            self.owner.transitions[f"{old}->{new}"] += 1
            log = logger.warning if new == "open" else logger.info
            log("circuit for %s: %s -> %s", self.owner.name, old, new)
            for hook in list(self.owner.on_change):
                try:
                    hook(old, new)
                except Exception:  # a hook (shared state) must never break the call being recorded
                    logger.debug("circuit hook for %s failed", self.owner.name, exc_info=True)

    return _Listener


class Breaker:
    """One provider endpoint's circuit (shared by every connector to it in the process).

    Attributes:
        transitions: How many times each state change happened (``"closed->open"``: 1).
        on_change: Called with ``(old, new)`` after each state change (shared state publishes
            an opening to the other processes this way).
    """

    def __init__(self, name: str, config: CircuitBreakerConfig) -> None:
        self.name = name
        self.config = config
        self.transitions: Counter[str] = Counter()
        self.on_change: list[Callable[[str, str], None]] = []
        _load_pybreaker()
        import pybreaker


        self._breaker = pybreaker.CircuitBreaker(
            fail_max=config.failure_threshold,
            reset_timeout=config.reset_timeout,
            success_threshold=config.success_threshold,
            exclude=[_not_a_health_failure],
            throw_new_error_on_trip=False,  # the tripping call gets the provider's own error
            listeners=[_listener_class()(self)],
            name=name,
        )
        self._probe_in_flight = False
        self._gate = threading.Lock()

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        return str(self._breaker.current_state)

    @property
    def failures(self) -> int:
        """Consecutive counted failures so far."""
        return int(self._breaker.fail_counter)

    def seconds_until_probe(self) -> float:
        opened_at = self._breaker._state_storage.opened_at
        if opened_at is None:
            return 0.0
        elapsed = (datetime.now(timezone.utc) - opened_at).total_seconds()
        return max(0.0, self.config.reset_timeout - elapsed)

    def _open_error(self, why: str) -> CircuitOpenError:
        return CircuitOpenError(f"circuit open for {self.name} ({why}); not sent", provider=self.name.split("@")[0],
                                retry_after=self.seconds_until_probe())

    def check(self) -> None:
        """Raise :class:`CircuitOpenError` if a call would be refused now (changes no state)."""
        state = self._breaker.current_state
        if state == "closed":
            return
        if self._probe_in_flight:
            raise self._open_error("a probe is in flight")
        if state == "open" and self.seconds_until_probe() > 0:
            raise self._open_error(f"{self.failures} consecutive failures")

    def begin(self) -> bool:
        """Admit one call, or raise :class:`CircuitOpenError`. Returns whether it is the probe.

        While the circuit is not closed, exactly one call at a time is let through (the probe).
        """
        if self._breaker.current_state == "closed":
            return False
        with self._gate:  # the check-and-set must be atomic across threads too
            self.check()
            self._probe_in_flight = True
        return True

    def end(self, probe: bool, outcome: BaseException | None, *, finished: bool = True) -> None:
        """Record how an admitted call ended, exactly once.

        ``outcome`` is ``None`` for a success. Cancellations and abandoned streams
        (``finished=False``) are neutral: they neither count as failures nor close a circuit.
        """
        try:
            if finished and (outcome is None or isinstance(outcome, Exception)):
                self._record(outcome)
        finally:
            if probe:
                self._probe_in_flight = False

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Run the body as one admitted call (see :meth:`begin` / :meth:`end`)."""
        probe = self.begin()
        try:
            yield
        except BaseException as exc:
            self.end(probe, exc)
            raise
        self.end(probe, None)

    def _record(self, error: Exception | None) -> None:
        # pybreaker counts what is raised inside calling(); the exclude predicate turns
        # client errors (and anything not provider-health) into successes.
        import pybreaker

        try:
            with self._breaker.calling():
                if error is not None:
                    raise error
        except pybreaker.CircuitBreakerError:
            pass  # opened meanwhile by another call; nothing more to record
        except Exception as exc:
            if exc is not error:
                raise

    def record_failure(self, error: LLMConnectorError) -> None:
        """Count a failure outside an admitted call (kept for callers outside the pipeline)."""
        self._record(error)

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state, "failures": self.failures, "transitions": dict(self.transitions)}
