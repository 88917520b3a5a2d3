"""The synchronous API: the async connectors, callable from plain code.

    from llm_connectors import sync

    with sync.get_connector("openai") as conn:
        print(conn.generate_chat(None, "Hello").content)
        with conn.generate_chat_stream(None, "Tell me a story") as stream:
            for chunk in stream:
                print(chunk.delta, end="")

There is one implementation. A sync connector wraps the async connector that
``llm_connectors.get_connector`` builds and runs each call on a background event loop through an
anyio :class:`~anyio.from_thread.BlockingPortal`; the calling thread waits for the answer. The
exceptions, retries, breakers, fallbacks and ``stats()`` are therefore the async ones.

Design (see docs/sync.md for the user-facing version):

- **One loop for the process, not one per connector.** Connectors are bound to the loop they run
  on: HTTP clients are pooled per (loop, endpoint) and rate limiters per loop (``_pool``,
  ``resilience.policies``). On one shared loop every sync connector to an endpoint shares one
  connection pool and one rate limiter, exactly as async connectors on one loop do; a connector
  per request (Django, Flask) costs no thread start; a connector that is never closed (a notebook
  cell run again) leaks a pool reference, not a thread and a loop. The price is that every sync
  call in the process is served by one loop thread, which is fine for I/O-bound work.
- **The loop thread is our own daemon thread** running ``anyio.run`` with a ``BlockingPortal``
  inside, rather than ``start_blocking_portal``: on anyio 4.4, which we support, that runs the
  portal on a non-daemon executor thread (daemon only since 4.5, agronholm/anyio#750), so a
  process-wide portal would hang interpreter exit before any atexit hook could stop it; and we
  need the loop itself to schedule non-blocking closes from finalizers.
- **Callers in a running event loop** (Jupyter, or a sync library called from a coroutine) work
  because the caller never runs a loop of its own: it only blocks on a future. The caller's loop
  is paused for the duration of the call, as with any blocking library.
- **Ctrl-C**: the caller waits in an interruptible wait. When KeyboardInterrupt (or anything else)
  is raised there, the call's cancel scope on the loop is cancelled, the caller waits (bounded)
  until the task has finished its shielded cleanup (the HTTP response is closed, the connection
  is released, the rate-limit slot given back), then re-raises.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from .batches import BatchJob
from .definition import ServiceDefinition
from .errors import ConfigurationError, LLMConnectorError
from .factory import Connector, ConnectorHandle, get_connector as _get_async_connector
from .stream import ChatStream
from .types import ChatChunk, ChatResponse, EmbeddingResponse, MessageInput, ModelInfo, TokenCount

__all__ = ["SyncChatStream", "SyncConnector", "get_connector"]

logger = logging.getLogger("llm_connectors")
T = TypeVar("T")

#: Most seconds an interrupted call waits for its task on the loop to finish cleaning up.
CANCEL_GRACE: Final = 5.0
#: Most seconds interpreter exit waits for the loop thread to stop.
SHUTDOWN_GRACE: Final = 5.0
# Lock waits are interruptible by signals on POSIX but not on Windows, where Ctrl-C is only
# noticed between waits: there we wait in short slices.
_WAIT_SLICE: Final = 0.1 if os.name == "nt" else None
_THREAD_NAME: Final = "llm-connectors-sync"


class _Cancelled:
    """What a call's task returns when its caller interrupted it (the caller never reads it)."""


_CANCELLED: Final = _Cancelled()


class _Call:
    """One sync call's task on the loop; lets the calling thread cancel it and wait for it."""

    __slots__ = ("cancelled", "finished", "scope", "started")

    def __init__(self) -> None:
        self.cancelled = False
        self.started = False
        self.scope: anyio.CancelScope | None = None
        self.finished = threading.Event()

    def cancel(self, processed: threading.Event) -> None:
        """Cancel the task; runs on the loop thread, so it cannot race the task's start."""
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()
        processed.set()


class _Loop:
    """A started loop thread: its portal and its asyncio loop."""

    __slots__ = ("detached", "generation", "loop", "pid", "portal", "thread")

    def __init__(self, portal: BlockingPortal, loop: asyncio.AbstractEventLoop, thread: threading.Thread,
                 generation: int) -> None:
        self.portal = portal
        self.loop = loop
        self.thread = thread
        self.generation = generation
        self.pid = os.getpid()
        # asyncio keeps only weak references to tasks: hold detached ones until they finish.
        self.detached: set[asyncio.Task[None]] = set()

    def spawn(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Start ``fn()`` as a task of its own (on the loop thread, from a plain callback).

        A plain asyncio task, not one of the portal's: anyio's task groups cannot spawn from a
        callback, and a detached failure must not cancel the portal's other tasks.
        """
        task = self.loop.create_task(_quietly(fn))
        self.detached.add(task)
        task.add_done_callback(self.detached.discard)


class _Runner:
    """The process's background event loop, started on first use and stopped at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: _Loop | None = None
        self._generation = 0
        self._atexit = False
        #: Tasks started by sync calls that have not finished yet (diagnostics and tests).
        self.in_flight = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> int:
        """Start the loop if it is not running; return its generation (a new one after a fork)."""
        return self._running().generation

    def _running(self) -> _Loop:
        current = self._current
        if current is not None and current.pid == os.getpid() and current.thread.is_alive():
            return current
        with self._lock:
            current = self._current
            if current is None or current.pid != os.getpid() or not current.thread.is_alive():
                current = self._current = self._start()
            return current

    def _start(self) -> _Loop:
        self._generation += 1
        ready: concurrent.futures.Future[tuple[BlockingPortal, asyncio.AbstractEventLoop]]
        ready = concurrent.futures.Future()
        thread = threading.Thread(target=self._main, args=(ready,), name=_THREAD_NAME, daemon=True)
        thread.start()
        portal, loop = ready.result()
        if not self._atexit:
            self._atexit = True
            atexit.register(self.shutdown)
        return _Loop(portal, loop, thread, self._generation)

    @staticmethod
    def _main(ready: concurrent.futures.Future[Any]) -> None:
        async def serve() -> None:
            async with BlockingPortal() as portal:
                ready.set_result((portal, asyncio.get_running_loop()))
                await portal.sleep_until_stopped()

        try:
            anyio.run(serve, backend="asyncio")
        except BaseException as exc:  # reported to the thread starting us
            if not ready.done():
                ready.set_exception(exc)
            else:  # pragma: no cover - the portal's task group only fails on a bug of ours
                logger.error("the llm_connectors.sync event loop stopped: %r", exc)

    def shutdown(self) -> None:
        """Stop the loop, cancelling calls still running (at interpreter exit; tests)."""
        with self._lock:
            current, self._current = self._current, None
        if current is None or current.pid != os.getpid() or threading.get_ident() == current.thread.ident:
            return
        with contextlib.suppress(RuntimeError):  # already stopped
            current.portal.call(current.portal.stop, True)
        current.thread.join(SHUTDOWN_GRACE)

    def after_fork(self) -> None:
        """In a forked child the loop thread does not exist: forget it (and a lock held at the fork)."""
        self._lock = threading.Lock()
        self._current = None
        self.in_flight = 0

    # -- calls -------------------------------------------------------------------------------

    def run(self, fn: Callable[[], Awaitable[T]], generation: int | None = None) -> T:
        """Run ``fn()`` on the loop and return its result, raising what it raised.

        Args:
            fn: Makes the awaitable to run (called on the loop thread).
            generation: The loop the caller's connector is bound to; a different one raises.
        """
        current = self._running()
        if threading.get_ident() == current.thread.ident:
            raise RuntimeError("the llm_connectors.sync API was called from its own event loop thread, which "
                               "would deadlock; code running on an event loop must use the async API")
        if generation is not None and generation != current.generation:
            raise ConfigurationError(
                "this sync connector belongs to an event loop that has stopped (the process forked, or the "
                "interpreter is exiting); create a new connector with llm_connectors.sync.get_connector()")
        call = _Call()
        future: concurrent.futures.Future[T | _Cancelled] | None = None
        try:
            future = current.portal.start_task_soon(self._tracked, call, fn)
            _wait(future)
        except BaseException as exc:
            if future is not None or not isinstance(exc, Exception):
                # Interrupted (Ctrl-C, a signal handler's exception): stop the task and let it
                # finish its shielded cleanup first, so that no request is in flight and no
                # connection is held when we re-raise.
                _interrupt(current, call)
            raise
        try:
            result = future.result()
        except concurrent.futures.CancelledError:
            result = _CANCELLED  # the portal cancels what still runs when it stops
        if isinstance(result, _Cancelled):
            raise RuntimeError("the llm_connectors.sync event loop was shut down during the call")
        return result

    def run_sync(self, fn: Callable[[], T], generation: int | None = None) -> T:
        """Run a plain function on the loop thread (where the connector's state lives)."""
        return self.run(functools.partial(_call_sync, fn), generation)

    async def _tracked(self, call: _Call, fn: Callable[[], Awaitable[T]]) -> T | _Cancelled:
        self.in_flight += 1  # only ever changed on the loop thread
        call.started = True
        try:
            with anyio.CancelScope() as scope:
                call.scope = scope
                if call.cancelled:
                    scope.cancel()
                return await fn()
            return _CANCELLED
        finally:
            call.scope = None
            self.in_flight -= 1
            call.finished.set()

    def spawn_detached(self, fn: Callable[[], Awaitable[Any]], generation: int) -> None:
        """Schedule ``fn()`` on the loop without waiting; safe from any thread and from finalizers.

        Finalizers run wherever the garbage collector does, including the loop thread itself,
        where a portal call would raise: ``call_soon_threadsafe`` works from everywhere.
        """
        current = self._current
        if current is None or current.generation != generation or current.pid != os.getpid():
            return  # that loop is gone, and with it everything the task would have closed
        with contextlib.suppress(RuntimeError):  # the loop is closing (interpreter exit)
            current.loop.call_soon_threadsafe(current.spawn, fn)


async def _call_sync(fn: Callable[[], T]) -> T:
    return fn()


async def _quietly(fn: Callable[[], Awaitable[Any]]) -> None:
    # Nobody awaits a detached task: log its failure rather than leave asyncio to warn.
    try:
        await fn()
    except Exception as exc:  # nobody is waiting for this result
        logger.debug("closing an abandoned stream failed: %r", exc)


def _interrupt(current: _Loop, call: _Call) -> None:
    """Cancel ``call``'s task and wait (bounded) until it has finished cleaning up."""
    processed = threading.Event()
    try:
        current.loop.call_soon_threadsafe(call.cancel, processed)
    except RuntimeError:  # the loop is closed: nothing runs there any more
        return
    processed.wait(CANCEL_GRACE)
    # A task that had not started when the cancel ran will see it at its start and stop at
    # its first checkpoint, before any I/O: only a started one needs waiting for.
    if call.started:
        call.finished.wait(CANCEL_GRACE)


def _wait(future: concurrent.futures.Future[Any]) -> None:
    """Block until ``future`` is done; a signal's exception (KeyboardInterrupt) gets through."""
    while not future.done():
        concurrent.futures.wait((future,), timeout=_WAIT_SLICE)


_runner = _Runner()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_runner.after_fork)


# -- public API -------------------------------------------------------------------------------


def get_connector(spec: str | Mapping[str, Any] | None = None, /, **kwargs: Any) -> SyncConnector:
    """Get a sync connector; the same arguments and forms as :func:`llm_connectors.get_connector`.

    A provider id (``"openai"``), ``"provider:model"``, ``"auto"``, keyword settings (``primary=``,
    ``fallbacks=``, ``retry=``, ...) or a dict config. Use it directly or with ``with``.

    Raises:
        ConfigurationError: bad arguments or missing credentials.
        NoProviderAvailableError: ``"auto"`` found no usable provider.
    """
    handle = _get_async_connector(spec, **kwargs)  # checks the arguments here, in the caller's thread
    generation = _runner.start()
    return SyncConnector(_runner.run(functools.partial(_build, handle), generation))


async def _build(handle: ConnectorHandle) -> Connector:
    return await handle


class SyncConnector:
    """A connector whose methods are plain functions; wraps an async connector.

    Made by :func:`get_connector`. Its methods can be called from any thread, from many at once,
    and from code running inside an event loop (Jupyter). Ctrl-C cancels the call in flight.

    Args:
        connector: An async connector that has not run on any event loop yet (e.g. a fresh
            ``OpenAIConnector(...)``); the sync connector owns it from now on. Connectors are
            bound to the loop they first run on, so do not also use it with ``await``.
    """

    __slots__ = ("_closed", "_connector", "_generation")

    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        self._generation = _runner.start()
        self._closed = False

    # -- what needs no I/O -------------------------------------------------------------------

    @property
    def async_connector(self) -> Connector:
        """The wrapped async connector (bound to the background loop: do not ``await`` it elsewhere)."""
        return self._connector

    @property
    def provider(self) -> str:
        """The provider id (``"fallback"`` for a chain)."""
        return self._connector.provider

    @property
    def definition(self) -> ServiceDefinition:
        """The provider's declarative :class:`ServiceDefinition`."""
        return self._connector.definition

    @property
    def capabilities(self) -> frozenset[str]:
        """What this provider (or any member of a chain) can do."""
        return self._connector.capabilities

    def is_compatible_model(self, model: str) -> bool:
        """Whether ``model`` looks like one of this provider's models."""
        return self._connector.is_compatible_model(model)

    def model_info(self, model: str | None = None) -> ModelInfo:
        """What the model catalog knows of ``model`` (no I/O; see ``BaseConnector.model_info``)."""
        return self._connector.model_info(model)

    # -- calls -------------------------------------------------------------------------------

    def generate_chat(self, model: str | None = None, messages: Iterable[MessageInput] | str = (),
                      **options: Any) -> ChatResponse:
        """Send a conversation and wait for the complete answer.

        Same arguments, options, result and errors as the async
        :meth:`~llm_connectors.BaseConnector.generate_chat`.
        """
        connector = self._connector
        return _runner.run(lambda: connector.generate_chat(model, messages, **options), self._generation)

    def generate_chat_stream(self, model: str | None = None, messages: Iterable[MessageInput] | str = (),
                             **options: Any) -> SyncChatStream:
        """Stream the answer as an iterator of :class:`~llm_connectors.ChatChunk`.

        Options are validated now (bad ones raise here); the request is sent on the first
        ``next()``. Use ``with conn.generate_chat_stream(...) as stream:`` to close the HTTP
        response however the loop ends; an abandoned stream is also closed when it is garbage
        collected.
        """
        connector = self._connector
        stream = _runner.run_sync(lambda: connector.generate_chat_stream(model, messages, **options),
                                  self._generation)
        return SyncChatStream(stream, self._generation)

    def generate_embedding(self, model: str | None = None, input: str | Sequence[str] = (),
                           **options: Any) -> EmbeddingResponse:
        """Embed one text or many; ``embeddings`` keeps input order."""
        connector = self._connector
        return _runner.run(lambda: connector.generate_embedding(model, input, **options), self._generation)

    def count_tokens(self, model: str | None = None, messages: Iterable[MessageInput] | str = (),
                     **options: Any) -> TokenCount:
        """Input tokens the chat would count (exact where the provider counts, else estimated)."""
        connector = self._connector
        return _runner.run(lambda: connector.count_tokens(model, messages, **options), self._generation)

    def list_models(self) -> list[ModelInfo]:
        """Every model the provider lists (on a chain: ``"provider:model"`` ids)."""
        return _runner.run(self._connector.list_models, self._generation)

    def submit_batch(self, items: Iterable[Mapping[str, Any]]) -> SyncBatchJob:
        """Submit a provider batch job (see ``BaseConnector.submit_batch``)."""
        connector = self._connector
        return SyncBatchJob(_runner.run(lambda: connector.submit_batch(items), self._generation), self._generation)

    def get_batch(self, batch_id: str) -> SyncBatchJob:
        """Resume a provider batch job from its id."""
        connector = self._connector
        return SyncBatchJob(_runner.run(lambda: connector.get_batch(batch_id), self._generation), self._generation)

    def list_batches(self) -> Iterator[SyncBatchJob]:
        """The provider's batch jobs, page by page."""
        jobs = _runner.run_sync(self._connector.list_batches, self._generation)  # raises here where unsupported
        for job in _iterate(jobs, self._generation):
            yield SyncBatchJob(job, self._generation)

    def health_check(self, timeout: float | None = None) -> bool:
        """True when the provider answers within ``timeout`` seconds (default 10); never raises."""
        connector = self._connector
        return _runner.run(lambda: connector.health_check(timeout), self._generation)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Counters per provider, as the async ``stats()``.

        Read on the loop thread: the counters are updated there, and reading them elsewhere
        while a call records its latency could fail.
        """
        return _runner.run_sync(self._connector.stats, self._generation)

    def close(self) -> None:
        """Release the connector's HTTP client. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ConfigurationError):  # its loop is gone, and its connections with it
            _runner.run(self._connector.aclose, self._generation)

    def __enter__(self) -> SyncConnector:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SyncConnector {self._connector!r}>"


class SyncBatchJob:
    """A provider batch job with plain methods; wraps a :class:`~llm_connectors.batches.BatchJob`."""

    __slots__ = ("_generation", "job")

    def __init__(self, job: BatchJob, generation: int) -> None:
        self.job = job
        self._generation = generation

    id = property(lambda self: self.job.id)
    provider = property(lambda self: self.job.provider)
    status = property(lambda self: self.job.status)
    counts = property(lambda self: self.job.counts)
    done = property(lambda self: self.job.done)
    estimated_cost = property(lambda self: self.job.estimated_cost)

    def refresh(self) -> SyncBatchJob:
        _runner.run(self.job.refresh, self._generation)
        return self

    def cancel(self) -> SyncBatchJob:
        _runner.run(self.job.cancel, self._generation)
        return self

    def wait(self, *, poll_interval: float = 30.0, timeout: float | None = None,
             on_progress: Callable[[BatchJob], Any] | None = None) -> SyncBatchJob:
        """Poll until the job ends (``on_progress`` runs on the connector's loop thread)."""
        job = self.job
        _runner.run(lambda: job.wait(poll_interval=poll_interval, timeout=timeout, on_progress=on_progress),
                    self._generation)
        return self

    def results(self) -> Iterator[tuple[str, ChatResponse | LLMConnectorError]]:
        """``(custom_id, ChatResponse or typed error)`` per item, streamed from the results file."""
        return _iterate(self.job.results(), self._generation)

    def __repr__(self) -> str:
        return repr(self.job).replace("<BatchJob", "<SyncBatchJob", 1)


def _iterate(agen: AsyncIterator[T], generation: int) -> Iterator[T]:
    """An async iterator stepped on the background loop; closed there if the caller stops early."""
    finished = False
    try:
        while True:
            try:
                item = _runner.run(agen.__anext__, generation)
            except StopAsyncIteration:
                finished = True
                return
            yield item
    finally:
        close = getattr(agen, "aclose", None)
        if not finished and close is not None:
            _runner.spawn_detached(close, generation)


class SyncChatStream:
    """A streamed chat answer: an iterator of :class:`~llm_connectors.ChatChunk` and a context manager.

    Each ``next()`` runs one step of the async :class:`~llm_connectors.ChatStream` on the
    background loop, so chunks arrive as the provider sends them (nothing is read ahead). Leaving
    a ``with`` block closes the HTTP response; so does dropping the stream unfinished.
    After the last chunk :attr:`response` holds the accumulated :class:`~llm_connectors.ChatResponse`.
    Use a stream from one thread at a time (calls from several are serialised).
    """

    __slots__ = ("_closed", "_generation", "_lock", "_started", "_stream")

    def __init__(self, stream: ChatStream, generation: int) -> None:
        self._stream = stream
        self._generation = generation
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    def __iter__(self) -> SyncChatStream:
        return self

    def __next__(self) -> ChatChunk:
        chunk = self._step(functools.partial(_next_chunk, self._stream))
        if chunk is None:
            raise StopIteration
        return chunk

    def _step(self, fn: Callable[[], Awaitable[T]]) -> T | None:
        """Run one step of the async stream; ``None`` once the stream is closed or drained."""
        with self._lock:
            if self._closed:
                return None
            self._started = True
            try:
                result = _runner.run(fn, self._generation)
            except Exception:
                self._closed = True  # the async stream closed itself before raising
                raise
            except BaseException:
                # Interrupted: the task was cancelled and has cleaned up; close for good measure.
                self._closed = True
                _runner.spawn_detached(self._stream.aclose, self._generation)
                raise
            if result is None:
                self._closed = True  # drained: the response is already closed
            return result

    @property
    def response(self) -> ChatResponse:
        """The accumulated answer, once the stream has been drained (``RuntimeError`` before)."""
        return self._stream.response

    @property
    def text(self) -> str:
        """The text delivered so far."""
        return self._stream.text

    @property
    def provider(self) -> str | None:
        """Who is serving the stream, once it has opened."""
        return self._stream.provider

    def collect(self) -> ChatResponse:
        """Drain the remaining chunks (in one step on the loop) and return the complete answer.

        Raises:
            RuntimeError: the stream was closed before it finished.
        """
        response = self._step(self._stream.collect)
        self._closed = True  # drained
        if response is not None:
            return response
        try:  # it was already closed: drained by iteration (there is a response) or abandoned
            return self._stream.response
        except RuntimeError:
            raise RuntimeError("the stream was closed before it finished") from None

    def close(self) -> None:
        """Close the HTTP response. Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._started:
                _runner.run(self._stream.aclose, self._generation)

    def __enter__(self) -> SyncChatStream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        # Dropped half-way (``for chunk in conn.generate_chat_stream(...): break``): close the
        # response on the loop without blocking whichever thread the garbage collector runs in.
        if getattr(self, "_started", False) and not getattr(self, "_closed", True):
            self._closed = True
            with contextlib.suppress(Exception):  # never raise from a finalizer
                _runner.spawn_detached(self._stream.aclose, self._generation)


async def _next_chunk(stream: ChatStream) -> ChatChunk | None:
    # StopAsyncIteration would reach the caller as an ordinary exception; None marks the end.
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None
