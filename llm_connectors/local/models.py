"""GGUF models for the local runtime: which files there are, loading them into llama.cpp, and the work done on them.

- :class:`LocalRuntime` finds the model files a ``local`` connector can see (the default model, a
  folder of them, the downloaded default) and builds the work of a chat or embedding request,
  to run on a :class:`~.jobs.Job`.
- Loaded models are kept for the life of the process, one per file and :class:`RuntimeSettings`,
  shared by every connector. A llama.cpp context is not thread-safe, so a loaded model serves
  one request at a time; others wait for its lock, still cancellable. :func:`unload_models`
  frees the idle ones.
- Generation stops within one token of a job's stop flag: the model checks it in llama-cpp-python's
  token loop.

``llama_cpp`` is imported on a worker thread, the first time a model is loaded; importing this
module costs nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .default_model import default_model_path
from .jobs import POLL_INTERVAL, Job, active_jobs

__all__ = [
    "MODEL_ENV",
    "LocalRuntime",
    "ModelLoadError",
    "RuntimeSettings",
    "Stopped",
    "model_id",
    "padded_context",
    "runtime_installed",
    "unload_models",
]

#: The environment variable naming the default model: a ``.gguf`` file or a folder of them.
MODEL_ENV = "LLM_CONNECTORS_LOCAL_MODEL"

_EXIT_JOIN = 2.0  # seconds, per worker, that interpreter exit waits for generation to stop
_CTX_STEP = 256  # llama.cpp rounds context sizes up to a multiple of this


def runtime_installed() -> bool:
    """Whether llama-cpp-python is installed (checked without importing it)."""
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False


def model_id(path: Path) -> str:
    """A model's id: its file name without ``.gguf``."""
    return path.name[:-5] if path.name.lower().endswith(".gguf") else path.name


def padded_context(context_length: int) -> int:
    """A context size in tokens, rounded up to a multiple of 256 as llama.cpp does."""
    return -(-context_length // _CTX_STEP) * _CTX_STEP


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


class Stopped(Exception):
    """The job was stopped before it reached the model."""


class ModelLoadError(Exception):
    """The GGUF file could not be loaded."""


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
        while not self.lock.acquire(timeout=POLL_INTERVAL):
            if job.stopped:
                raise Stopped
        try:
            if job.stopped:
                raise Stopped
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
            kwargs: dict[str, Any] = {
                "model_path": str(self.path),
                "n_ctx": padded_context(settings.context_length),
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
                raise ModelLoadError(f"could not load {self.path.name}: {exc}") from exc
        return self._llama


_models: dict[tuple[Path, RuntimeSettings, bool], _LoadedModel] = {}
_models_lock = threading.Lock()


def _loaded(path: Path, settings: RuntimeSettings, *, embedding: bool) -> _LoadedModel:
    key = (path, settings, embedding)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = _LoadedModel(path, settings, embedding=embedding)
        return model


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
