"""Local GGUF models (``local``): llama.cpp in this process, no server, no key, no network.

Install with ``pip install 'llm-connectors-sdk[local]'`` (llama-cpp-python), then
``llm-connectors fetch-model`` for the default model, SmolLM2-135M-Instruct (98 MB, downloaded
once into a cache; :mod:`.default_model`). Point ``LLM_CONNECTORS_LOCAL_MODEL`` at any other
``.gguf`` file (or a folder of them).

The connector speaks the OpenAI dialect to an in-process transport
(:mod:`~llm_connectors.local.runtime`), so it is a translator like every other:
same types, errors, stats, retries, breakers and fallbacks. What the runtime adds:

- generation on a worker thread, one request at a time per loaded model, handed to the event
  loop chunk by chunk; a cancelled, closed or abandoned stream stops the model within a token;
- tool calls when a tool is named in ``tool_choice`` (or ``"required"`` with one tool): a grammar
  makes the model emit arguments that fit the tool's schema. With ``"auto"``, whether the model
  calls tools depends on its chat template (``chat_format="chatml-function-calling"`` helps);
- JSON mode and JSON schema, enforced by a grammar;
- embeddings from a second copy of the model loaded for them (its own pooling, else the mean of
  its token vectors);
- ``list_models``: the ``.gguf`` files it can see (the default's folder, ``models_dir``, the
  bundled model), by file name without ``.gguf``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from .._env import local_model_path, settings_from_env
from ..definition import AuthSpec, Capability, ParameterDefinition, ServiceDefinition, common_parameters
from ..errors import ConfigurationError, InvalidRequestError
from ..local.runtime import IN_PROCESS_URL, LocalRuntime, LocalTransport, RuntimeSettings, runtime_installed
from .openai_compat import OpenAICompatibleConnector

__all__ = ["LOCAL", "LocalConnector"]

LOCAL = ServiceDefinition(
    id="local",
    name="Local GGUF model (llama.cpp)",
    base_url=IN_PROCESS_URL,
    auth=AuthSpec(kind="none", required=False),
    capabilities=frozenset({
        Capability.CHAT, Capability.STREAMING, Capability.TOOLS, Capability.JSON_MODE, Capability.JSON_SCHEMA,
        Capability.EMBEDDINGS, Capability.LIST_MODELS,
    }),
    parameters=(
        *common_parameters(temperature_max=2.0),
        ParameterDefinition("top_k", "integer", "Sample from the k most likely tokens (0: all).", minimum=0),
        ParameterDefinition("min_p", "number", "Drop tokens less likely than min_p times the best.", minimum=0.0,
                            maximum=1.0),
        ParameterDefinition("repeat_penalty", "number", "Penalise recently generated tokens (1: off).",
                            minimum=0.0, maximum=10.0),
        ParameterDefinition("frequency_penalty", "number", "Penalise tokens by how often they appeared.",
                            minimum=-2.0, maximum=2.0),
        ParameterDefinition("presence_penalty", "number", "Penalise tokens that appeared at all.", minimum=-2.0,
                            maximum=2.0),
    ),
    docs_url="https://llama-cpp-python.readthedocs.io/en/latest/api-reference/",
)


class LocalConnector(OpenAICompatibleConnector):
    """A GGUF model run in this process by llama.cpp.

    Args:
        model_path: The default model: a ``.gguf`` file or a folder of them. ``None``: the
            default model (SmolLM2-135M-Instruct, see :mod:`.default_model`). ``from_env`` (and so
            ``get_connector("local")``) reads ``LLM_CONNECTORS_LOCAL_MODEL``.
        models_dir: A further folder whose ``.gguf`` files are listed and usable by id.
        context_length: Context window in tokens (``n_ctx``); 0 takes the model's own.
        threads: CPU threads for generation; ``None`` lets llama.cpp choose.
        gpu_layers: Layers to offload on a GPU build of llama.cpp (-1: all).
        chat_format: A llama-cpp-python chat format; ``None`` uses the template in the file.
        **kwargs: See :class:`~llm_connectors.BaseConnector` (``timeout``, ``retry``,
            ``circuit_breaker``, ``rate_limit``, ``default_model``...). Nothing goes over a
            network: an ``http_client`` or transport object is refused, an engine name ignored.

    Raises:
        ConfigurationError: llama-cpp-python is not installed, or no model file was found.
    """

    definition: ClassVar[ServiceDefinition] = LOCAL
    send_stream_options: ClassVar[bool] = False  # the runtime always reports usage at the end

    def __init__(self, *, model_path: str | os.PathLike[str] | None = None,
                 models_dir: str | os.PathLike[str] | None = None, context_length: int = 4096,
                 threads: int | None = None, gpu_layers: int = 0, chat_format: str | None = None,
                 **kwargs: Any) -> None:
        # An engine name ("httpx", "aiohttp") may come from a chain's shared settings: there is no
        # HTTP engine here, so it is moot. A client or transport object of the caller's is refused.
        if isinstance(kwargs.get("transport"), str):
            kwargs.pop("transport")
        for name in ("http_client", "transport"):
            if kwargs.get(name) is not None:
                raise ConfigurationError(f"the local connector runs in process and takes no {name}",
                                         provider=kwargs.get("provider_id") or "local")
        if not runtime_installed():
            raise ConfigurationError(
                "the local connector needs llama-cpp-python: pip install 'llm-connectors-sdk[local]', then "
                "`llm-connectors fetch-model` for a small default model that runs offline", provider="local")
        settings = RuntimeSettings(context_length=context_length, threads=threads, gpu_layers=gpu_layers,
                                   chat_format=chat_format)
        self.runtime = LocalRuntime(model_path, models_dir, settings)
        kwargs.setdefault("default_model", self.runtime.default_model)
        kwargs.setdefault("default_embedding_model", kwargs["default_model"])
        kwargs.pop("api_key", None)  # nothing to authenticate to; never hold a stray key
        super().__init__(transport=LocalTransport(self.runtime), **kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> LocalConnector:
        """Construct with ``model_path`` from ``LLM_CONNECTORS_LOCAL_MODEL`` when not given."""
        if kwargs.get("model_path") is None:
            kwargs["model_path"] = local_model_path(environ)
        return cls(**settings_from_env(cls.definition, kwargs, environ))

    def validate_embedding_options(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Local models embed at their own size; ``dimensions`` is refused before any work."""
        for name, value in params.items():
            if name == "dimensions" and value is not None:
                raise InvalidRequestError("local models return vectors of their own size; drop 'dimensions'",
                                          provider=self.provider)
        return super().validate_embedding_options({k: v for k, v in params.items() if k != "dimensions"})

    def __repr__(self) -> str:
        return f"<LocalConnector provider={self.provider!r} model={self.default_model!r} " \
               f"path={str(self.runtime.default_path)!r}>"
