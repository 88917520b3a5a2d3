"""The in-process llama.cpp runtime behind the ``local`` connector, served as an httpx transport.

:class:`~llm_connectors.connectors.local.LocalConnector` is an OpenAI-dialect translator like
any other connector. What answers its requests is :class:`LocalTransport`: an
``httpx.AsyncBaseTransport`` that serves the OpenAI routes (``/chat/completions`` with or
without SSE, ``/embeddings``, ``/models``) from GGUF files through llama-cpp-python, with no
socket. Validation, error mapping, stream decoding, deadlines, stats, retries and breakers are
therefore exactly those of the remote connectors.

This module is the runtime's public face; the parts live beside it:

- :mod:`.jobs`: each request runs on a worker thread of its own (llama.cpp blocks); a
  :class:`Job` hands its results to the event loop, at most a buffer ahead of a slow reader,
  without the event loop ever waiting on the model or the worker on the event loop.
- :mod:`.models`: which GGUF files there are (:class:`LocalRuntime`), loading them once per file
  and :class:`RuntimeSettings`, one request at a time per loaded model, stopping generation
  within one token of a job's stop flag, and :func:`unload_models`.
- :mod:`.transport`: :class:`LocalTransport`, OpenAI request bodies translated into
  llama-cpp-python arguments and answers shaped like an OpenAI-compatible server's. Closing,
  cancelling or dropping a response stops its job.

Importing the runtime loads no ``llama_cpp``: :mod:`.models` imports it when the first model
loads, on a worker thread.
"""

from __future__ import annotations

from .jobs import Job, active_jobs
from .models import MODEL_ENV, LocalRuntime, RuntimeSettings, runtime_installed, unload_models
from .transport import IN_PROCESS_URL, LocalTransport

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
