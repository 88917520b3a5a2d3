"""A circuit breaker whose open state and half-open probe are shared by every process.

RELIABILITY.md §2.7 (d): pybreaker's ``CircuitRedisStorage`` makes blocking Redis calls on
every state access, so it is not used. Each process keeps its in-memory :class:`Breaker` (its
own consecutive-failure count, no Redis on the success path), and Redis holds one record per
endpoint, "open until T" on the server's clock:

* a local breaker that opens writes the record (``BREAKER_TRIP``, fire-and-forget), so every
  other process refuses calls once its cached status is refreshed (``refresh_interval``,
  0.5 s by default): within a second;
* after T the record means half-open: a call must win the lease ``SET probe NX PX`` to be the
  probe, so one probe is in flight across all processes; its success deletes the record
  (closed everywhere), a provider-health failure opens it again, a cancellation frees the lease;
* without Redis, each process's own breaker still protects it (degraded mode).
"""

from __future__ import annotations

import time

import anyio

from ..errors import CircuitOpenError
from .breaker import Breaker, _not_a_health_failure
from .shared import CLOSED, OPEN, PROBING, Scope, SharedUnavailable

__all__ = ["SharedBreaker"]

LEASE_MAX = 60.0  # seconds a probe may hold the lease (a crashed prober blocks the fleet at most this long)
LINGER = 3600.0  # seconds a half-open record waits for its probe before the circuit is forgotten


class SharedBreaker:
    """The fleet-wide side of one endpoint's circuit (process-wide; wraps the local breaker).

    Args:
        local: This process's breaker for the endpoint.
        scope: The endpoint's keys and link.
    """

    def __init__(self, local: Breaker, scope: Scope) -> None:
        self.local = local
        self.scope = scope
        self._unpublished = 0.0  # monotonic end of a local opening Redis has not heard of
        local.on_change.append(self._local_change)

    def detach(self) -> None:
        """Stop publishing the local breaker's openings (replaced after a fork or a reset)."""
        if self._local_change in self.local.on_change:
            self.local.on_change.remove(self._local_change)

    def _local_change(self, old: str, new: str) -> None:
        if new != "open":
            return
        self._publish_trip(self.local.config.reset_timeout)

    def _publish_trip(self, seconds: float) -> None:
        link, scope = self.scope.link, self.scope
        if not link.healthy:  # told when Redis returns, if still open then
            self._unpublished = time.monotonic() + seconds
            return
        link.fire(link.script("BREAKER_TRIP", [scope.circuit, scope.probe],
                              [max(1, round(seconds * 1000)), round(LINGER * 1000), link.process_id]))
        scope.note(OPEN, seconds * 1000)

    async def admit(self, deadline: float | None) -> str | None:
        """Refuse a call while the fleet's circuit is open; in half-open, let one probe through.

        Returns:
            The probe's lease id when this call is the fleet's probe (pass it to :meth:`finish`),
            else ``None``. ``None`` too when Redis is unavailable: the local breaker decides alone.

        Raises:
            CircuitOpenError: another process opened the circuit, or holds the probe.
        """
        status = await self.scope.status()
        if status is None:
            return None
        now = time.monotonic()
        if self._unpublished:  # this process opened its circuit while Redis was away: tell the others now
            left, self._unpublished = self._unpublished - now, 0.0
            if left > 0 and self.local.state != "closed":
                self._publish_trip(left)
        local_closed = self.local.state == "closed"
        if status.phase == CLOSED and local_closed:
            return None
        if status.phase == OPEN and status.until > now:
            raise self._refused(status.until - now, "opened by a process sharing this endpoint")
        if status.phase == PROBING and status.until > now:
            raise self._refused(0.0, "a probe is in flight in another process")
        # Half-open (or due to be, or this process's own circuit is recovering): ask Redis, atomically.
        link, scope = self.scope.link, self.scope
        owner = link.new_id()
        remaining = LEASE_MAX if deadline is None else min(LEASE_MAX, max(0.0, deadline - anyio.current_time()))
        try:
            reply = await link.run(link.script("BREAKER_ELECT", [scope.circuit, scope.probe],
                                               [owner, round((remaining + 1.0) * 1000)]))
        except SharedUnavailable:
            return None
        phase, ms = int(reply[0]), float(reply[1])
        if phase == 0:
            scope.note(CLOSED, 0.0)
            return None
        if phase == 1:
            scope.note(OPEN, ms)
            raise self._refused(ms / 1000, "opened by a process sharing this endpoint")
        if phase == 3:
            # Another process probes: ask again after refresh_interval, not only when its lease ends.
            scope.note(PROBING, min(ms, scope.link.config.refresh_interval * 1000))
            raise self._refused(0.0, "a probe is in flight in another process")
        return owner

    def finish(self, owner: str | None, outcome: BaseException | None, *, finished: bool = True) -> None:
        """Record how the fleet's probe ended: close, reopen, or free the lease (cancelled)."""
        if owner is None:
            return
        link, scope = self.scope.link, self.scope
        keys = [scope.circuit, scope.probe]
        if not finished or (outcome is not None and not isinstance(outcome, Exception)):
            link.fire(link.script("BREAKER_RELEASE", keys, [owner]))
        elif outcome is None or _not_a_health_failure(outcome):
            link.fire(link.script("BREAKER_CLOSE", keys, [owner]))
            scope.note(CLOSED, 0.0)
        else:
            self._publish_trip(self.local.config.reset_timeout)

    def _refused(self, seconds: float, why: str) -> CircuitOpenError:
        return CircuitOpenError(f"circuit open for {self.local.name} ({why}); not sent",
                                provider=self.local.name.split("@")[0], retry_after=max(0.0, seconds) or None)

    def snapshot(self) -> dict[str, object]:
        """The fleet's circuit as this process last read it."""
        status = self.scope._status
        phase = {0: "closed", 1: "open", 2: "half-open", 3: "half-open"}
        if status is None or not self.scope.link.healthy:
            return {"fleet_state": "unknown"}
        now = time.monotonic()
        name = phase.get(status.phase, "unknown")
        if status.phase == OPEN and status.until <= now:
            name = "half-open"
        return {"fleet_state": name}
