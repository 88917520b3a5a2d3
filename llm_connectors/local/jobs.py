"""Worker threads for the local runtime, and the hand-over of their results to the event loop.

llama.cpp blocks, so each request runs on a worker thread of its own. Results reach the event
loop through a :class:`Job`: the worker hands over items against credits (at most ``buffer``
waiting) and schedules a wake-up on the reader's loop; the loop awaits them. Generation never
runs far ahead of a slow reader, the event loop never waits on the model, and the worker never
waits on the event loop.

Nothing here knows about models or HTTP: :mod:`.models` says what work a job does, and
:mod:`.transport` reads its results.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel

from ..errors import ConfigurationError

__all__ = ["END", "POLL_INTERVAL", "Failure", "Job", "active_jobs"]

POLL_INTERVAL = 0.05  # seconds between checks of a stop flag while a worker waits
_STREAM_BUFFER = 64  # chunks a worker may run ahead of its reader

#: What :meth:`Job.get` returns after the last item.
END = object()


class Failure:
    """An exception raised on the worker, on its way to the event loop."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_jobs: weakref.WeakSet[Job] = weakref.WeakSet()
_jobs_lock = threading.Lock()


class Job:
    """One request's work on a worker thread, and the hand-over of its results to the event loop.

    The worker calls :meth:`put` for each result (it waits for a credit, so at most ``buffer``
    items are ever queued) and :meth:`finish` at the end; the event loop awaits :meth:`get` and
    calls :meth:`cancel` when it stops listening. The model checks :attr:`stopped` before each
    token. Create it on the event loop that will read it.

    Attributes:
        prompt_tokens: Tokens in the prompt, once generation has started.
        completion_tokens: Tokens generated for the answer (end-of-generation markers excluded).
        tokens_after_stop: Tokens that came out of the model after the stop flag was set (at
            most the one being computed at that moment).
        done: Set when the worker thread has finished.
    """

    def __init__(self, *, idle_timeout: float = 300.0, buffer: int = _STREAM_BUFFER) -> None:
        token = getattr(anyio.lowlevel, "current_token", None)
        if token is None:  # pragma: no cover - depends on the installed anyio
            raise ConfigurationError("the local connector needs anyio >= 4.11: pip install -U 'anyio>=4.11'",
                                     provider="local")
        self._token = token()
        self._items: deque[Any] = deque()
        self._mutex = threading.Lock()
        self._waiter: anyio.Event | None = None
        self._credits = threading.Semaphore(buffer)
        self._idle_timeout = idle_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.done = threading.Event()
        self.prompt_tokens: int | None = None
        self.completion_tokens = 0
        self.tokens_after_stop = 0

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def start(self, work: Callable[[Job], None], name: str) -> None:
        """Run ``work(self)`` on a new worker thread; its exceptions reach :meth:`get`."""
        def run() -> None:
            try:
                work(self)
            except BaseException as exc:  # carried to the reader, who raises it in context
                self.finish(exc)
            else:
                self.finish()
            finally:
                self.done.set()

        # Daemon, so that a worker stuck handing a result to a finished event loop can never
        # hold up interpreter exit; models.py stops the running ones cleanly at exit first.
        thread = self._thread = threading.Thread(target=run, name=name, daemon=True)
        with _jobs_lock:
            _jobs.add(self)
        thread.start()

    # -- the event loop's side ------------------------------------------------------------------

    async def get(self) -> Any:
        """The next item; :data:`END` after the last, or a :class:`Failure`."""
        while True:
            with self._mutex:
                if self._items:
                    item = self._items.popleft()
                    break
                waiter = self._waiter = anyio.Event()
            await waiter.wait()
        if item is not END and not isinstance(item, Failure):
            self._credits.release()
        return item

    def cancel(self) -> None:
        """Stop listening: the worker stops before its next token and frees the model."""
        self._stop.set()

    def join(self, timeout: float) -> bool:
        """Wait (blocking) for the worker thread to end; True if it did."""
        return self.done.wait(timeout) if self._thread is not None else True

    # -- the worker's side ----------------------------------------------------------------------

    def put(self, item: Any) -> bool:
        """Hand one item to the reader; False when the reader has gone (stop working)."""
        waited = 0.0
        while not self._credits.acquire(timeout=POLL_INTERVAL):
            waited += POLL_INTERVAL
            if self._stop.is_set():
                return False
            if waited >= self._idle_timeout:  # neither read nor closed for the read timeout
                self._stop.set()
                return False
        if self._stop.is_set():
            return False
        return self._push(item)

    def finish(self, error: BaseException | None = None) -> None:
        """The worker is done (with ``error`` if it failed)."""
        self._push(END if error is None else Failure(error))

    def _push(self, item: Any) -> bool:
        with self._mutex:
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is None or self._stop.is_set():
            return not self._stop.is_set()
        token = self._token
        try:
            # Scheduled on the loop, not waited for (unlike anyio.from_thread.run_sync): a worker
            # never blocks on the event loop, so a loop that stopped without closing cannot keep
            # a worker, and the model it holds, forever.
            token.backend_class.run_sync_soon(waiter.set, (), token.native_token)
        except Exception:  # the event loop has finished: nobody will read this
            self._stop.set()
            return False
        return True


def active_jobs() -> list[Job]:
    """Jobs whose worker thread has not finished (tests and diagnostics)."""
    with _jobs_lock:
        return [job for job in _jobs if not job.done.is_set()]
