"""Presets: OpenAI-compatible services usable by id (``get_connector("groq")``), as data.

Each row says where the service lives, which variable holds its key, its default model and its
quirks, every fact with the page it comes from and the day it was read. A quirk the service
*rejects* (answers 400 for) is enforced before any I/O (an ``InvalidRequestError`` naming the
service and the field, or dropped with ``drop_params=True``); one it *ignores* is documented only.
Where no source was found, the row says nothing rather than guess (docs/providers/presets.md).

A typed Python table rather than JSON like the model catalog: there is no per-user data to load
or override here (``register_openai_compatible(..., replace=True)`` replaces a row), the sources sit
next to the values they back, and mypy checks every row. Importing this module imports no connector:
the registry reads it to know the ids; :mod:`.preset_connector` builds a class on first use.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from ..definition import Capability

__all__ = ["MESSAGE_NAME", "PRESETS", "Preset", "Quirk"]

#: The pseudo-option of a quirk about ``name`` on (non-tool) messages.
MESSAGE_NAME = "messages[].name"
_READ = "read 2026-12-07"


@dataclass(frozen=True, slots=True)
class Quirk:
    """One request field a service treats differently from OpenAI.

    Attributes:
        option: The normalised option (``logprobs``...) or :data:`MESSAGE_NAME`.
        why: What the service does with it, as its documentation says.
        source: The page (URL and date read) that says so.
        models: Globs of the model ids it applies to; empty means every model.
        except_models: Globs of model ids it does not apply to.
        ignored: The service accepts and ignores the field (documented, not enforced).
    """

    option: str
    why: str
    source: str
    models: tuple[str, ...] = ()
    except_models: tuple[str, ...] = ()
    ignored: bool = False

    def applies_to(self, model: str) -> bool:
        if self.models and not any(fnmatch.fnmatchcase(model, glob) for glob in self.models):
            return False
        return not any(fnmatch.fnmatchcase(model, glob) for glob in self.except_models)


@dataclass(frozen=True, slots=True)
class Preset:
    """One OpenAI-compatible service.

    Attributes:
        id: Provider id (``get_connector(id)``).
        name: Display name.
        base_url: Base URL including the version path the service documents.
        api_key_env: Variable holding the key; ``None`` for local servers (a key can still be passed).
        base_url_env: Variable overriding the base URL, where the service's own tooling reads one.
        default_model: Chat model used when a call names none (``None``: the caller must name one).
        sources: The page behind each fact (``base_url``, ``api_key_env``, ``default_model``, ``lacks``).
        lacks: Capabilities of the generic dialect the service does not offer.
        quirks: Request fields it rejects or ignores.
        notes: Anything else a user would trip on, each with its source.
        docs_url: The service's OpenAI-compatibility page.
    """

    id: str
    name: str
    base_url: str
    api_key_env: str | None
    default_model: str | None
    sources: dict[str, str]
    docs_url: str
    base_url_env: str | None = None
    lacks: frozenset[str] = frozenset()
    quirks: tuple[Quirk, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def local(self) -> bool:
        """A server on this machine: keyless, counted by ``auto`` only when a probe finds it."""
        return self.api_key_env is None


_GROQ = f"https://console.groq.com/docs/openai ({_READ})"
_GROQ_400 = "Groq answers 400 for it"
_DEEPSEEK_R = f"https://api-docs.deepseek.com/zh-cn/guides/reasoning_model ({_READ})"
_XAI_R = f"https://docs.x.ai/docs/guides/reasoning ({_READ})"
_CEREBRAS = f"https://inference-docs.cerebras.ai/resources/openai ({_READ})"
_CEREBRAS_400 = (f"https://hexdocs.pm/req_llm/cerebras.html, quoting Cerebras' 'Unsupported OpenAI Features' "
                 f"({_READ}; the stored copy of Cerebras' own page did not include the list)")
_BIFROST = "https://docs.getbifrost.ai/providers/supported-providers/{} ({}; a gateway's docs)"
_XAI_REASONING = ("grok-3-mini*", "grok-4*", "grok-code*")

PRESETS: dict[str, Preset] = {p.id: p for p in (
    Preset(
        id="groq", name="Groq", base_url="https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY",
        default_model="llama-3.3-70b-versatile", docs_url="https://console.groq.com/docs/openai",
        sources={"base_url": _GROQ, "api_key_env": _GROQ,
                 "default_model": f"https://ai.pydantic.dev/api/models/groq, production models ({_READ})",
                 "lacks": _BIFROST.format("groq", _READ)},
        lacks=frozenset({Capability.EMBEDDINGS}),
        quirks=tuple(Quirk(option, _GROQ_400, _GROQ)
                     for option in ("logprobs", "top_logprobs", "logit_bias", MESSAGE_NAME)),
        notes=(f"temperature 0 is converted to 1e-8 ({_GROQ})",
               f"n must be 1 ({_GROQ}; every OpenAI-dialect connector here refuses n > 1 anyway)"),
    ),
    Preset(
        id="together", name="Together AI", base_url="https://api.together.ai/v1", api_key_env="TOGETHER_API_KEY",
        default_model="openai/gpt-oss-20b",
        docs_url="https://docs.together.ai/docs/inference/openai-compatibility",
        sources=dict.fromkeys(("base_url", "api_key_env", "default_model"),
                              f"https://docs.together.ai/docs/inference/openai-compatibility ({_READ})"),
        notes=(f"model ids are namespaced <provider>/<model>; OpenAI's model names are not served "
               f"(https://docs.together.ai/docs/inference/openai-compatibility, {_READ})",),
    ),
    Preset(
        id="deepseek", name="DeepSeek", base_url="https://api.deepseek.com", api_key_env="DEEPSEEK_API_KEY",
        default_model="deepseek-chat", docs_url="https://api-docs.deepseek.com",
        sources={"base_url": _DEEPSEEK_R,
                 "api_key_env": f"https://docs.litellm.ai/docs/providers/deepseek ({_READ})",
                 "default_model": f"https://docs.pipecat.ai/server/services/llm/deepseek ({_READ})",
                 "lacks": _BIFROST.format("deepseek", _READ)},
        lacks=frozenset({Capability.EMBEDDINGS}),
        quirks=(
            *(Quirk(option, "deepseek-reasoner answers an error for it", _DEEPSEEK_R, models=("deepseek-reasoner",))
              for option in ("logprobs", "top_logprobs")),
            *(Quirk(option, "deepseek-reasoner accepts it and ignores it", _DEEPSEEK_R, models=("deepseek-reasoner",),
                    ignored=True)
              for option in ("temperature", "top_p", "presence_penalty", "frequency_penalty")),
        ),
        notes=(f"reasoning_content in an input message is a 400 (this library never sends it) ({_DEEPSEEK_R})",
               f"the guide lists function calling among what deepseek-reasoner does not support; not enforced, "
               f"as it does not say the API refuses it ({_DEEPSEEK_R})"),
    ),
    Preset(
        id="openrouter", name="OpenRouter", base_url="https://openrouter.ai/api/v1",
        api_key_env="OPENROUTER_API_KEY", default_model=None,
        docs_url="https://openrouter.ai/docs/api-reference/overview",
        sources={"base_url": f"https://openrouter.ai/docs/api-reference/overview ({_READ})",
                 "api_key_env": f"https://docs.boundaryml.com/ref/llm-client-providers/openai-generic-open-router "
                                f"({_READ})",
                 "default_model": f"none: OpenRouter uses the account's default when the request names no model "
                                  f"(https://openrouter.ai/docs/api-reference/overview, {_READ}); this library "
                                  f"always sends one, so name it"},
        notes=(f"response_format json_object works only on the models the models page marks "
               f"(https://openrouter.ai/docs/api-reference/overview, {_READ})",),
    ),
    Preset(
        id="fireworks", name="Fireworks AI", base_url="https://api.fireworks.ai/inference/v1",
        api_key_env="FIREWORKS_API_KEY", default_model=None,
        docs_url="https://docs.fireworks.ai/tools-sdks/openai-compatibility",
        sources={"base_url": f"https://docs.pipecat.ai/server/services/llm/fireworks ({_READ})",
                 "api_key_env": f"https://docs.pipecat.ai/server/services/llm/fireworks ({_READ})",
                 "default_model": "none: no current default found in Fireworks' own docs; model ids are "
                                  "accounts/fireworks/models/<name>"},
    ),
    Preset(
        id="xai", name="xAI (Grok)", base_url="https://api.x.ai/v1", api_key_env="XAI_API_KEY",
        default_model="grok-4.3", docs_url="https://docs.x.ai/docs/guides/reasoning",
        sources={"base_url": f"https://docs.pipecat.ai/server/services/llm/grok ({_READ})",
                 "api_key_env": f"https://promptfoo.dev/docs/providers/xai ({_READ})",
                 "default_model": "https://newreleases.io/project/github/vercel/ai/release/@ai-sdk%2Fxai@4.0.0-canary.61"
                                  f" (xAI's current lineup per @ai-sdk/xai; {_READ})"},
        quirks=tuple(Quirk(option, "xAI's reasoning models answer an error for it", _XAI_R,
                           models=_XAI_REASONING, except_models=("*non-reasoning*",))
                     for option in ("presence_penalty", "frequency_penalty", "stop")),
        notes=(f"reasoning_effort is an error on the models that do not take it (grok-3, grok-4, "
               f"grok-4-fast-reasoning per {_XAI_R}); pass it through extra= where a model takes it",),
    ),
    Preset(
        id="perplexity", name="Perplexity (Sonar)", base_url="https://api.perplexity.ai",
        api_key_env="PERPLEXITY_API_KEY", default_model="sonar-pro",
        docs_url="https://docs.perplexity.ai/docs/sonar/openai-compatibility",
        sources={"base_url": f"https://docs.perplexity.ai/docs/sonar/openai-compatibility ({_READ})",
                 "default_model": f"https://docs.perplexity.ai/docs/sonar/openai-compatibility ({_READ})",
                 "api_key_env": f"https://ai-sdk.dev/v4/providers/ai-sdk-providers/perplexity ({_READ})",
                 "lacks": f"https://docs.perplexity.ai/guides lists the OpenAI parameters it takes, without tools "
                          f"({_READ}); https://wisechecker.com/?p=19526 says tools are missing"},
        lacks=frozenset({Capability.TOOLS}),
        notes=(f"sonar-reasoning-pro writes a <think> section before the JSON even with response_format "
               f"(https://docs.perplexity.ai/faq/faq, {_READ})",
               f"every answer runs a web search; citations and search_results are in ChatResponse.raw "
               f"(https://docs.perplexity.ai/guides, {_READ})"),
    ),
    Preset(
        id="cerebras", name="Cerebras", base_url="https://api.cerebras.ai/v1", api_key_env="CEREBRAS_API_KEY",
        default_model="gpt-oss-120b", docs_url="https://inference-docs.cerebras.ai/resources/openai",
        sources={"base_url": _CEREBRAS, "api_key_env": _CEREBRAS, "default_model": _CEREBRAS,
                 "lacks": _BIFROST.format("cerebras", _READ)},
        lacks=frozenset({Capability.EMBEDDINGS}),
        quirks=tuple(Quirk(option, "Cerebras answers 400 for it", _CEREBRAS_400)
                     for option in ("frequency_penalty", "presence_penalty", "logit_bias", "parallel_tool_calls")),
        notes=(f"no developer role: system messages act at the developer level on gpt-oss-120b ({_CEREBRAS}); "
               "a developer message is sent as system",),
    ),
    Preset(
        id="vllm", name="vLLM server", base_url="http://127.0.0.1:8000/v1", api_key_env=None, default_model=None,
        docs_url="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
        sources={"base_url": f"https://docs.vllm.ai/en/v0.8.4/serving/openai_compatible_server.html "
                             f"(localhost:8000/v1; {_READ})",
                 "api_key_env": "none: the key is whatever `vllm serve --api-key` was given; pass api_key=",
                 "default_model": "none: the model is the one `vllm serve MODEL` loaded; name it"},
        notes=(f"parameters vLLM adds (top_k...) go in extra= "
               f"(https://docs.vllm.ai/en/v0.8.4/serving/openai_compatible_server.html, {_READ})",),
    ),
    Preset(
        id="lmstudio", name="LM Studio", base_url="http://127.0.0.1:1234/v1", api_key_env=None, default_model=None,
        docs_url="https://lmstudio.ai/docs/api/openai-api",
        sources={"base_url": f"https://lmstudio.ai/docs/api/openai-api (localhost:1234/v1; {_READ})",
                 "api_key_env": "none: a token only when 'Require Authentication' is on; pass api_key=",
                 "default_model": "none: use the model identifier LM Studio shows"},
    ),
    Preset(
        id="llamacpp", name="llama.cpp server", base_url="http://127.0.0.1:8080/v1", api_key_env=None,
        default_model=None, docs_url="https://github.com/ggml-org/llama.cpp/tree/master/tools/server",
        sources={"base_url": f"https://www.mintlify.com/ggml-org/llama.cpp/api/tools/llama-server "
                             f"(127.0.0.1:8080; {_READ})",
                 "api_key_env": "none: the key is whatever `llama-server --api-key` was given; pass api_key=",
                 "default_model": "none: name any model"},
        notes=(f"with one model loaded the model field is not used; any value works "
               f"(https://learn.arm.com/learning-paths/servers-and-cloud-computing/llama-cpu/llama-server/, {_READ})",
               "a chat model answers /embeddings with one vector per token; this library refuses that "
               "with a ProtocolError naming the fix"),
    ),
)}
