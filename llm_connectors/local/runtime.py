"""The in-process llama.cpp runtime behind the ``local`` connector, served as an httpx transport.

:class:`~llm_connectors.connectors.local.LocalConnector` is an OpenAI-dialect translator like
any other connector. What answers its requests is :class:`LocalTransport`: an
``httpx.AsyncBaseTransport`` that serves the OpenAI routes (``/chat/completions`` with or
without SSE, ``/embeddings``, ``/models``) from GGUF files through llama-cpp-python, with no
socket. Validation, error mapping, stream decoding, deadlines, stats, retries and breakers are
therefore exactly those of the remote connectors.

Threads and cancellation:

- llama.cpp blocks, so each request runs on a worker thread of its own. A loaded model serves
  one request at a time (a llama.cpp context is not thread-safe); others wait for its lock,
  still cancellable.
- Results reach the event loop through a :class:`Job`: the worker hands over items against
  credits (at most ``buffer`` waiting) and schedules a wake-up on the reader's loop; the loop
  awaits them. Generation never runs far ahead of a slow reader, the event loop never waits on
  the model, and the worker never waits on the event loop.
- Stopping: closing or cancelling the response (or dropping it unread) sets the job's stop flag;
  the model checks it before each token, so generation ends within one token and the model is
  free for the next request. A reader that neither reads nor closes for the read timeout is
  treated as gone.

``llama_cpp`` is imported on a worker thread, the first time a model is loaded; importing this
module costs nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from ..errors import ConfigurationError
from .default_model import default_model_path

__all__ = [
    "IN_PROCESS_URL",
    "MODEL_ENV",
    "Job",
    "LocalRuntime",
    "LocalTransport",
    "RuntimeSettings",
    "active_jobs",
    "runtime_installed",
    "unload_models",
]

#: The environment variable naming the default model: a ``.gguf`` file or a folder of them.
MODEL_ENV = "LLM_CONNECTORS_LOCAL_MODEL"
#: The connector's base URL. ``.invalid`` never resolves: nothing here ever reaches a network.
IN_PROCESS_URL = "https://in-process.invalid/v1"

_POLL = 0.05  # seconds between checks of a stop flag while a worker waits
_STREAM_BUFFER = 64  # chunks a worker may run ahead of its reader
_EXIT_JOIN = 2.0  # seconds, per worker, that interpreter exit waits for generation to stop
_CTX_STEP = 256  # llama.cpp rounds context sizes up to a multiple of this

# Keyword arguments of ``Llama.create_chat_completion`` a request body may carry as they are.
_CHAT_FIELDS = frozenset({
    "messages", "tools", "tool_choice", "temperature", "top_p", "top_k", "min_p", "typical_p", "stop",
    "seed", "response_format", "max_tokens", "presence_penalty", "frequency_penalty", "repeat_penalty",
    "tfs_z", "mirostat_mode", "mirostat_tau", "mirostat_eta", "logit_bias", "logprobs", "top_logprobs",
})


def runtime_installed() -> bool:
    """Whether llama-cpp-python is installed (checked without importing it)."""
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False


def model_id(path: Path) -> str:
    """A model's id: its file name without ``.gguf``."""
    return path.name[:-5] if path.name.lower().endswith(".gguf") else path.name


@dataclass(frozen=True)
class RuntimeSettings:
    """How models are loaded (one loaded copy per distinct settings and file).

    Attributes:
        context_length: Context window in tokens (``n_ctx``), rounded up to a multiple of 256 as
            llama.cpp does; 0 takes the model's own.
        threads: CPU threads for generation; ``None`` lets llama.cpp choose.
        gpu_layers: Layers to offload to a GPU build of llama.cpp (0: CPU only; -1: all).
        chat_format: A llama-cpp-python chat format name (``"chatml-function-calling"``...);
            ``None`` uses the template stored in the GGUF file.
    """

    context_length: int = 4096
    threads: int | None = None
    gpu_layers: int = 0
    chat_format: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.context_length, bool) or not isinstance(self.context_length, int) \
                or self.context_length < 0:
            raise ConfigurationError(f"context_length must be an integer >= 0, got {self.context_length!r}",
                                     provider="local")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ConfigurationError(f"threads must be a positive integer, got {self.threads!r}", provider="local")
        if isinstance(self.gpu_layers, bool) or not isinstance(self.gpu_layers, int) or self.gpu_layers < -1:
            raise ConfigurationError(f"gpu_layers must be an integer >= -1, got {self.gpu_layers!r}",
                                     provider="local")


# -- handing results from a worker thread to the event loop ---------------------------------------

class _Failure:
    """An exception raised on the worker, on its way to the event loop."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()
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
        # hold up interpreter exit; _stop_all_at_exit stops the running ones cleanly first.
        thread = self._thread = threading.Thread(target=run, name=name, daemon=True)
        with _jobs_lock:
            _jobs.add(self)
        thread.start()

    # -- the event loop's side ------------------------------------------------------------------

    async def get(self) -> Any:
        """The next item; ``_END`` after the last, or a ``_Failure``."""
        while True:
            with self._mutex:
                if self._items:
                    item = self._items.popleft()
                    break
                waiter = self._waiter = anyio.Event()
            await waiter.wait()
        if item is not _END and not isinstance(item, _Failure):
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
        while not self._credits.acquire(timeout=_POLL):
            waited += _POLL
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
        self._push(_END if error is None else _Failure(error))

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


@atexit.register
def _stop_all_at_exit() -> None:
    # A daemon thread still inside llama.cpp while the interpreter tears down can crash the
    # process on exit; stop every generation and give each a moment to leave the model. Then
    # free the models while llama_cpp is still importable (its finalizers fail later on).
    jobs = active_jobs()
    for job in jobs:
        job.cancel()
    for job in jobs:
        job.join(_EXIT_JOIN)
    unload_models(timeout=_EXIT_JOIN)


def unload_models(timeout: float = 10.0) -> int:
    """Free every loaded model that is not in use (they load again on the next request).

    Args:
        timeout: Seconds to wait for each model's current request to finish.

    Returns:
        How many models were freed.
    """
    with _models_lock:
        models = list(_models.values())
    return sum(model.unload(timeout) for model in models)


# -- loaded models --------------------------------------------------------------------------------

_llama_class: Any = None
_class_lock = threading.Lock()


def _stoppable_llama() -> Any:
    """``llama_cpp.Llama`` with a stop check and token counts in its token loop (imported lazily)."""
    global _llama_class
    with _class_lock:
        if _llama_class is not None:
            return _llama_class
        import llama_cpp

        class StoppableLlama(llama_cpp.Llama):  # type: ignore[misc,unused-ignore]  # Any without llama_cpp
            """``generate`` is llama-cpp-python's token loop, public and used by every completion
            path (chat, streaming, tool calls); checking the job there stops any of them."""

            job: Job | None = None

            def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Generator[int, Any, None]:
                job = self.job
                inner = super().generate(tokens, *args, **kwargs)
                if job is None:
                    yield from inner
                    return
                job.prompt_tokens = len(tokens)
                is_end = self._end_of_generation()
                try:
                    for token in inner:
                        if job.stopped:
                            job.tokens_after_stop += 1
                            return
                        if not is_end(token):  # counted like llama-cpp-python's own usage
                            job.completion_tokens += 1
                        yield token
                finally:
                    inner.close()

            def _end_of_generation(self) -> Callable[[int], bool]:
                vocab = getattr(getattr(self, "_model", None), "vocab", None)
                is_eog = getattr(llama_cpp, "llama_vocab_is_eog", None)
                if is_eog is not None and vocab is not None:
                    return lambda token: bool(is_eog(vocab, token))
                eos = self.token_eos()  # older llama-cpp-python: the one end token
                return lambda token: token == eos

        _llama_class = StoppableLlama
        return _llama_class


class _LoadedModel:
    """One GGUF file loaded with one set of settings; one request at a time."""

    def __init__(self, path: Path, settings: RuntimeSettings, *, embedding: bool) -> None:
        self.path = path
        self.settings = settings
        self.embedding = embedding
        self.lock = threading.Lock()
        self._llama: Any = None

    @contextlib.contextmanager
    def use(self, job: Job) -> Iterator[Any]:
        """Wait for the model (giving up if the job is stopped), load it once, and lend it."""
        while not self.lock.acquire(timeout=_POLL):
            if job.stopped:
                raise _Stopped
        try:
            if job.stopped:
                raise _Stopped
            llama = self._load()
            llama.job = job
            try:
                yield llama
            finally:
                llama.job = None
        finally:
            self.lock.release()

    def unload(self, timeout: float) -> bool:
        """Free the llama.cpp model once no request uses it; False if it stayed busy."""
        if not self.lock.acquire(timeout=timeout):
            return False
        try:
            llama, self._llama = self._llama, None
            if llama is not None:
                llama.close()
            return llama is not None
        finally:
            self.lock.release()

    def _load(self) -> Any:
        if self._llama is None:
            settings = self.settings
            # llama.cpp pads the context to a multiple of 256 tokens, while llama-cpp-python sizes
            # its token buffer from the number asked for; asking for a padded size keeps them equal
            # (otherwise a long prompt fails with a numpy broadcast error instead of a clear one).
            n_ctx = -(-settings.context_length // _CTX_STEP) * _CTX_STEP
            kwargs: dict[str, Any] = {
                "model_path": str(self.path),
                "n_ctx": n_ctx,
                "n_gpu_layers": settings.gpu_layers,
                "verbose": False,
            }
            if settings.threads is not None:
                kwargs["n_threads"] = settings.threads
            if self.embedding:
                # The model's own pooling is kept (embedding models declare one). Forcing mean pooling
                # on a chat model works too, but llama.cpp then prints a warning on every load.
                kwargs["embedding"] = True
            elif settings.chat_format is not None:
                kwargs["chat_format"] = settings.chat_format
            try:
                self._llama = _stoppable_llama()(**kwargs)
            except (ValueError, RuntimeError, OSError) as exc:
                raise _ModelLoadError(f"could not load {self.path.name}: {exc}") from exc
        return self._llama


class _Stopped(Exception):
    """The job was stopped before it reached the model."""


class _ModelLoadError(Exception):
    """The GGUF file could not be loaded."""


_models: dict[tuple[Path, RuntimeSettings, bool], _LoadedModel] = {}
_models_lock = threading.Lock()


def _loaded(path: Path, settings: RuntimeSettings, *, embedding: bool) -> _LoadedModel:
    key = (path, settings, embedding)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = _LoadedModel(path, settings, embedding=embedding)
        return model


# -- the runtime: which files are models, and the work done on them -------------------------------

class LocalRuntime:
    """The GGUF files a ``local`` connector can see, and how it runs them.

    Args:
        model_path: The default model: a ``.gguf`` file, or a folder whose first ``.gguf`` file
            (by name) is the default. ``None``: the default model (:mod:`.default_model`).
        models_dir: Another folder whose ``.gguf`` files are listed and usable by id.
        settings: How models are loaded.

    Raises:
        ConfigurationError: no usable model file.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None,
                 models_dir: str | os.PathLike[str] | None = None,
                 settings: RuntimeSettings | None = None) -> None:
        self.settings = settings or RuntimeSettings()
        self.folders: list[Path] = []
        default: Path | None = None
        if model_path is not None:
            path = Path(model_path).expanduser()
            if path.is_dir():
                self.folders.append(path)
                found = _gguf_files(path)
                if not found:
                    raise ConfigurationError(f"no .gguf model file in {str(path)!r}", provider="local")
                default = found[0]
            elif path.is_file():
                default = path
                self.folders.append(path.parent)
            else:
                raise ConfigurationError(
                    f"local model {str(path)!r} does not exist; set {MODEL_ENV} to a .gguf file or a folder "
                    "of them", provider="local")
        if models_dir is not None:
            folder = Path(models_dir).expanduser()
            if not folder.is_dir():
                raise ConfigurationError(f"models_dir {str(folder)!r} is not a folder", provider="local")
            self.folders.append(folder)
        self.bundled = default_model_path()
        if default is None:
            default = self.bundled
        if default is None:
            raise ConfigurationError(
                f"no local model: run `llm-connectors fetch-model` (downloads SmolLM2-135M-Instruct, 98 MB, once) "
                f"or set {MODEL_ENV} to a .gguf file", provider="local")
        self.default_path = default.resolve()

    @property
    def default_model(self) -> str:
        return model_id(self.default_path)

    def models(self) -> dict[str, Path]:
        """Every model file visible now, by id (the default first, then by folder and name)."""
        found: dict[str, Path] = {self.default_model: self.default_path}
        for folder in self.folders:
            for path in _gguf_files(folder):
                found.setdefault(model_id(path), path.resolve())
        if self.bundled is not None:
            found.setdefault(model_id(self.bundled), self.bundled.resolve())
        return found

    def resolve(self, model: str) -> Path | None:
        """The file for a model id, or for a path to a ``.gguf`` file."""
        found = self.models().get(model)
        if found is not None:
            return found
        if model.lower().endswith(".gguf"):
            path = Path(model).expanduser()
            if path.is_file():
                return path.resolve()
        return None

    def chat_worker(self, path: Path, kwargs: dict[str, Any], *, stream: bool,
                    name: str) -> Callable[[Job], None]:
        """The work of one chat request, to run with :meth:`Job.start`."""
        model = _loaded(path, self.settings, embedding=False)

        def work(job: Job) -> None:
            with model.use(job) as llama:
                if not stream:
                    job.put(llama.create_chat_completion(model=name, **kwargs))
                    return
                chunks = llama.create_chat_completion(model=name, stream=True, **kwargs)
                try:
                    for chunk in chunks:
                        if not job.put(chunk):
                            return
                finally:
                    chunks.close()
                # Like OpenAI's stream_options.include_usage: the counts in a last, choice-less chunk.
                prompt = job.prompt_tokens or 0
                job.put({"id": "chatcmpl-local", "object": "chat.completion.chunk", "created": int(time.time()),
                         "model": name, "choices": [],
                         "usage": {"prompt_tokens": prompt, "completion_tokens": job.completion_tokens,
                                   "total_tokens": prompt + job.completion_tokens}})

        return work

    def embedding_worker(self, path: Path, inputs: list[str], *, name: str) -> Callable[[Job], None]:
        """The work of one embedding request."""
        model = _loaded(path, self.settings, embedding=True)

        def work(job: Job) -> None:
            import llama_cpp

            with model.use(job) as llama:
                if llama.pooling_type() != llama_cpp.LLAMA_POOLING_TYPE_NONE:
                    job.put(llama.create_embedding(input=inputs, model=name))
                    return
                # A chat model declares no pooling and gives a vector per token; llama-cpp-python
                # mixes those up across inputs of one batch, so each input goes alone, and the
                # token vectors are averaged (what llama.cpp's mean pooling computes).
                data: list[dict[str, Any]] = []
                tokens = 0
                for index, text in enumerate(inputs):
                    if job.stopped:
                        return
                    part = llama.create_embedding(input=[text], model=name)
                    vectors = part["data"][0]["embedding"]
                    mean = [sum(column) / len(vectors) for column in zip(*vectors, strict=True)]
                    data.append({"object": "embedding", "index": index, "embedding": mean})
                    tokens += part.get("usage", {}).get("prompt_tokens") or 0
            job.put({"object": "list", "data": data, "model": name,
                     "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

        return work


def _gguf_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
    except OSError:
        return []


# -- the transport: OpenAI's routes, answered in process ------------------------------------------

class LocalTransport(httpx.AsyncBaseTransport):
    """Answers OpenAI-shaped requests from a :class:`LocalRuntime`, without a socket.

    Errors come back the way an OpenAI-compatible server sends them (status and an ``error``
    object), so the connector classifies them like any provider's: an unknown model is a 404,
    a prompt over the context window a 400 ``context_length_exceeded``, a failure inside the
    model a 500.
    """

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        method = request.method
        if method == "GET" and path.endswith("/models"):
            return self._models()
        if method == "POST" and path.endswith(("/chat/completions", "/embeddings")):
            try:
                body = json.loads(await request.aread())
            except ValueError:
                return _error(400, "the request body is not JSON")
            if not isinstance(body, dict):
                return _error(400, "the request body must be a JSON object")
            idle = _read_timeout(request)
            if path.endswith("/embeddings"):
                return await self._embeddings(body, idle)
            return await self._chat(body, idle)
        return _error(404, f"no route {method} {request.url.path}", code="not_found")

    def _models(self) -> httpx.Response:
        data = []
        for name, path in self.runtime.models().items():
            try:
                size = path.stat().st_size
            except OSError:
                continue  # deleted since it was listed
            context = -(-self.runtime.settings.context_length // _CTX_STEP) * _CTX_STEP
            data.append({"id": name, "object": "model", "owned_by": "local", "path": str(path), "size_bytes": size,
                         "context_length": context or None})
        return _json_response(200, {"object": "list", "data": data})

    def _model_path(self, body: Mapping[str, Any]) -> tuple[str, Path] | httpx.Response:
        name = body.get("model")
        if not isinstance(name, str) or not name:
            return _error(400, "model is required")
        path = self.runtime.resolve(name)
        if path is None:
            available = ", ".join(self.runtime.models())
            return _error(404, f"model {name!r} is not a local model file; available: {available}. Pass a "
                               f"model id, a path to a .gguf file, or set {MODEL_ENV}", code="model_not_found")
        return model_id(path) if name == str(path) or name.lower().endswith(".gguf") else name, path

    async def _chat(self, body: dict[str, Any], idle: float) -> httpx.Response:
        found = self._model_path(body)
        if isinstance(found, httpx.Response):
            return found
        name, path = found
        stream = bool(body.get("stream"))
        try:
            kwargs = _chat_arguments(body)
        except ValueError as exc:
            return _error(400, str(exc))
        job = Job(idle_timeout=idle)
        job.start(self.runtime.chat_worker(path, kwargs, stream=stream, name=name), "llm-connectors-local-chat")
        try:
            first = await job.get()
        except BaseException:
            job.cancel()  # cancelled or timed out while waiting: stop the model at once
            raise
        if first is _END:
            return _error(500, "the model produced no answer", code="server_error")
        if isinstance(first, _Failure):
            return _failure_response(first.error)
        if not stream:
            job.cancel()  # nothing more will come; let the worker go
            return _json_response(200, first)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_EventStream(job, first))

    async def _embeddings(self, body: dict[str, Any], idle: float) -> httpx.Response:
        found = self._model_path(body)
        if isinstance(found, httpx.Response):
            return found
        name, path = found
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
            return _error(400, "input must be a string or a non-empty list of strings")
        unknown = sorted(set(body) - {"model", "input", "encoding_format"})
        if unknown:
            return _error(400, f"local embeddings take no {', '.join(unknown)}; the model's own size is used")
        job = Job(idle_timeout=idle)
        job.start(self.runtime.embedding_worker(path, inputs, name=name), "llm-connectors-local-embed")
        try:
            result = await job.get()
        finally:
            job.cancel()
        if isinstance(result, _Failure):
            return _failure_response(result.error)
        if result is _END:
            return _error(500, "the model produced no embeddings", code="server_error")
        return _json_response(200, result)


class _EventStream(httpx.AsyncByteStream):
    """The SSE body of a streamed chat answer, read from a job as the model produces it.

    A plain async iterator rather than an async generator: httpx may drop it unfinished when the
    reader stops early, and an abandoned generator would warn on trio. Closing it, or dropping
    it, stops the model.
    """

    def __init__(self, job: Job, first: Any) -> None:
        self._job = job
        self._pending: list[Any] = [first]
        self._finished = False
        weakref.finalize(self, job.cancel)  # dropped without being closed: still stop the model

    def __aiter__(self) -> _EventStream:
        return self

    async def __anext__(self) -> bytes:
        if self._finished:
            raise StopAsyncIteration
        item = self._pending.pop() if self._pending else await self._job.get()
        if item is _END:
            self._finish()
            return b"data: [DONE]\n\n"
        if isinstance(item, _Failure):
            self._finish()
            return _sse(_error_body(item.error))  # an in-band error, as OpenAI-style servers send it
        return _sse(item)

    def _finish(self) -> None:
        self._finished = True
        self._job.cancel()

    async def aclose(self) -> None:
        self._finish()


def _chat_arguments(body: Mapping[str, Any]) -> dict[str, Any]:
    """``create_chat_completion`` keyword arguments from an OpenAI chat body."""
    unknown = sorted(set(body) - _CHAT_FIELDS - {"model", "stream", "stream_options", "n", "user"})
    if unknown:
        raise ValueError(f"local models do not take {', '.join(repr(u) for u in unknown)}; accepted fields: "
                         f"{', '.join(sorted(_CHAT_FIELDS))}")
    if body.get("n") not in (None, 1):
        raise ValueError("local models give one answer per request (n=1)")
    kwargs = {k: v for k, v in body.items() if k in _CHAT_FIELDS}
    messages = kwargs.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    kwargs["messages"] = [_flatten(m) for m in messages]
    tools = kwargs.get("tools")
    choice = kwargs.get("tool_choice")
    if choice == "required" and isinstance(tools, list):
        # llama-cpp-python forces a call only for a named tool; with one tool, that is the same.
        if len(tools) != 1:
            raise ValueError("local models support tool_choice='required' with exactly one tool; name the tool "
                             "to call instead: tool_choice={'type': 'function', 'function': {'name': ...}}")
        kwargs["tool_choice"] = {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
    response_format = kwargs.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        # llama-cpp-python's dialect: a json_object with the schema beside it, enforced by a grammar.
        schema = (response_format.get("json_schema") or {}).get("schema")
        kwargs["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
    return kwargs


def _flatten(message: Any) -> Any:
    """String content, as the chat templates inside GGUF files expect: text parts joined, and ""
    for an assistant turn that only called tools (templates concatenate ``content``)."""
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    if content is None:
        return {**message, "content": ""}
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return {**message, "content": "".join(str(p.get("text") or "") for p in content)}
    return message


def _read_timeout(request: httpx.Request) -> float:
    timeout = request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return float(read) if isinstance(read, (int, float)) and read > 0 else 300.0


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _json_response(status: int, data: Any) -> httpx.Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    # A stream, as a network transport returns it: ``content=`` would mark the body as already read.
    return httpx.Response(status, stream=httpx.ByteStream(body), headers={
        "content-type": "application/json", "content-length": str(len(body)), "x-request-id": _request_id()})


def _request_id() -> str:
    return "local-" + uuid.uuid4().hex[:16]


def _error(status: int, message: str, *, code: str | None = None) -> httpx.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return _json_response(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})


def _error_body(error: BaseException) -> dict[str, Any]:
    status, message, code = _describe(error)
    return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "param": None, "code": code}}


def _failure_response(error: BaseException) -> httpx.Response:
    status, message, code = _describe(error)
    return _error(status, message, code=code)


def _describe(error: BaseException) -> tuple[int, str, str | None]:
    """(status, message, code) for an exception raised by llama-cpp-python on a worker."""
    text = str(error) or type(error).__name__
    if isinstance(error, _ModelLoadError):
        return 400, text, "model_load_failed"  # the file is wrong; retrying will not help
    if isinstance(error, ValueError):
        if "context window" in text or "exceed context" in text:
            return 400, text, "context_length_exceeded"
        return 400, text, None
    if isinstance(error, _Stopped):
        return 499, "the request was cancelled", "cancelled"
    if isinstance(error, ImportError):
        return 500, f"llama-cpp-python is not usable: {text}; pip install 'llm-connectors-sdk[local]'", "server_error"
    return 500, f"{type(error).__name__}: {text}", "server_error"
