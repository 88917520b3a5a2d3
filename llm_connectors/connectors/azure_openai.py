"""Azure OpenAI (``azure_openai``): OpenAI's dialects on an Azure resource, deployments as models.

The caller's model is the *deployment* name. Two URL styles (docs/providers/azure_openai.md):

* the v1 API (the default): ``{endpoint}/openai/v1/chat/completions``, the deployment in the body,
  exactly OpenAI's paths (Responses, embeddings, models, batches alike);
* the dated API, chosen by ``api_version="2024-10-21"`` (or ``OPENAI_API_VERSION``):
  ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`` and likewise for
  embeddings; Responses and models at ``{endpoint}/openai/...?api-version=...`` (openai 3.63.0
  ``lib/azure.py`` routes only the deployment endpoints under ``/deployments/``).

Auth: the key in an ``api-key`` header, or a Microsoft Entra ID token (``azure_ad_token`` or a
callable ``azure_ad_token_provider``, called per request) as ``Authorization: Bearer``. The
environment is read as the official SDK's ``AzureOpenAI`` does: ``AZURE_OPENAI_AD_TOKEN`` before
``AZURE_OPENAI_API_KEY`` when no credential is given, ``AZURE_OPENAI_ENDPOINT``, ``OPENAI_API_VERSION``.
A 400 with ``code: content_filter`` is an :class:`AzureContentFilterError` naming the filtered
categories from ``innererror.content_filter_result``; a filtered answer (HTTP 200) finishes with
``content_filter`` and keeps Azure's ``content_filter_results`` in ``raw``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from .._secrets import Secret
from ..definition import AuthSpec, ServiceDefinition
from ..errors import ConfigurationError, ContentFilterError, LLMConnectorError
from ..requests import ChatRequest, EmbeddingRequest, HTTPRequest
from ..wire import jsonio
from ..wire.classify import ErrorInfo
from .openai import OPENAI, OpenAIConnector
from .openai_batches import OpenAIBatches

__all__ = ["AZURE_OPENAI", "AzureContentFilterError", "AzureOpenAIConnector", "configured_in_env"]

KEY_ENV = "AZURE_OPENAI_API_KEY"
TOKEN_ENV = "AZURE_OPENAI_AD_TOKEN"
ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
VERSION_ENV = "OPENAI_API_VERSION"
_VERSION = re.compile(r"^[0-9A-Za-z.-]{1,40}$")
_C = TypeVar("_C", bound="AzureOpenAIConnector")

AZURE_OPENAI = ServiceDefinition(
    id="azure_openai",
    name="Azure OpenAI",
    # Never used as such: the endpoint (or base_url) is required, see AzureOpenAIConnector.__init__.
    base_url="https://example-resource.openai.azure.com/openai/v1",
    auth=AuthSpec(kind="header", header="api-key", env_var=KEY_ENV),
    capabilities=OPENAI.capabilities,
    parameters=OPENAI.parameters,
    docs_url="https://learn.microsoft.com/azure/ai-foundry/openai/reference",
)


class AzureContentFilterError(ContentFilterError):
    """Azure's content filter refused the prompt: a :class:`ContentFilterError` whose ``categories``
    are those with ``filtered: true`` (``hate``, ``jailbreak``, ``sexual``...)."""


class AzureOpenAIConnector(OpenAIConnector):
    """Azure OpenAI.

    Args:
        endpoint: The resource endpoint, ``https://<resource>.openai.azure.com`` (else
            ``AZURE_OPENAI_ENDPOINT``); or pass ``base_url`` for the full API root instead.
        api_version: Use the dated API with this ``api-version`` (e.g. ``"2024-10-21"``); ``None``
            or ``"v1"``: the v1 API.
        azure_ad_token: A Microsoft Entra ID token, sent as ``Authorization: Bearer``.
        azure_ad_token_provider: A callable (sync or async) returning an Entra ID token, called per
            request (``azure.identity.get_bearer_token_provider(...)``).
        api_key: The resource key, sent as ``api-key``. At most one of the three credentials.
        **kwargs: See :class:`~llm_connectors.connectors.openai.OpenAIConnector`.
    """

    definition: ClassVar[ServiceDefinition] = AZURE_OPENAI
    request_id_headers: ClassVar[tuple[str, ...]] = ("apim-request-id", "x-request-id")
    error_codes: ClassVar[Mapping[str, type[LLMConnectorError]]] = {
        **OpenAIConnector.error_codes, "content_filter": AzureContentFilterError}

    def __init__(self, *, endpoint: str | None = None, api_version: str | None = None,
                 azure_ad_token: str | None = None,
                 azure_ad_token_provider: Callable[[], Any] | None = None,
                 api_key: Any = None, base_url: str | None = None, **kwargs: Any) -> None:
        provider = kwargs.get("provider_id") or AZURE_OPENAI.id
        given = [n for n, v in (("api_key", api_key), ("azure_ad_token", azure_ad_token),
                                ("azure_ad_token_provider", azure_ad_token_provider)) if v is not None]
        if len(given) > 1:
            raise ConfigurationError(f"pass one credential, not {' and '.join(given)}", provider=provider)
        if azure_ad_token_provider is not None and not callable(azure_ad_token_provider):
            raise ConfigurationError("azure_ad_token_provider must be a callable returning an Entra ID token, got "
                                     f"{type(azure_ad_token_provider).__name__}", provider=provider)
        if api_version == "v1":
            api_version = None
        if api_version is not None and (not isinstance(api_version, str) or not _VERSION.match(api_version)):
            raise ConfigurationError("api_version must look like '2024-10-21' (or 'v1'), got "
                                     f"{str(api_version)[:40]!r}", provider=provider)
        self.api_version: str | None = api_version
        self.entra: bool = azure_ad_token is not None or azure_ad_token_provider is not None
        if base_url is None:
            if not endpoint or not isinstance(endpoint, str):
                raise ConfigurationError(
                    "Azure OpenAI needs the resource endpoint: pass endpoint='https://<resource>.openai.azure.com' "
                    f"or set {ENDPOINT_ENV}", provider=provider)
            base_url = endpoint.strip().rstrip("/") + ("/openai" if api_version else "/openai/v1")
        elif endpoint is not None:
            raise ConfigurationError("pass endpoint or base_url, not both", provider=provider)
        source = azure_ad_token_provider if azure_ad_token_provider is not None else azure_ad_token
        super().__init__(api_key=source if self.entra else api_key, base_url=base_url, **kwargs)

    @classmethod
    def from_env(cls: type[_C], environ: Mapping[str, str] | None = None, **kwargs: Any) -> _C:
        """The SDK's variables, each only where the matching argument is not given."""
        env = os.environ if environ is None else environ

        def read(name: str) -> str | None:
            return env.get(name, "").strip() or None

        settings = dict(kwargs)
        if all(settings.get(n) is None for n in ("api_key", "azure_ad_token", "azure_ad_token_provider")):
            token = read(TOKEN_ENV)  # the SDK's precedence: an AD token before the key
            if token:
                settings["azure_ad_token"] = token
            elif read(KEY_ENV):
                settings["api_key"] = read(KEY_ENV)
        if settings.get("endpoint") is None and settings.get("base_url") is None and read(ENDPOINT_ENV):
            settings["endpoint"] = read(ENDPOINT_ENV)
        if settings.get("api_version") is None and read(VERSION_ENV):
            settings["api_version"] = read(VERSION_ENV)
        return cls(**settings)

    def credential_headers(self, key: Secret | None) -> dict[str, str]:
        if key is None:
            return {}
        if self.entra:
            return {"authorization": "Bearer " + key.reveal()}
        return {"api-key": key.reveal()}

    # -- the dated API: deployments in the path, api-version in the query -----------------------------

    def _dated(self, request: HTTPRequest, deployment: str | None = None) -> HTTPRequest:
        if self.api_version is None:
            return request
        if deployment is not None:
            request.path = f"/deployments/{quote(deployment, safe='')}{request.path}"
        request.params = {**(request.params or {}), "api-version": self.api_version}
        return request

    def build_chat_request(self, request: ChatRequest) -> HTTPRequest:
        wire = super().build_chat_request(request)
        return self._dated(wire, None if wire.path == self.responses_path else request.model)

    def build_embedding_request(self, request: EmbeddingRequest) -> HTTPRequest:
        return self._dated(super().build_embedding_request(request), request.model)

    def build_list_models_request(self, cursor: str | None) -> HTTPRequest:
        return self._dated(super().build_list_models_request(cursor))

    def batch_translator(self) -> OpenAIBatches:
        """OpenAI's Batch API on the v1 path; refused on the dated one (its file and batch routes differ)."""
        if self.api_version:
            raise self._unsupported("batches", "provider batch jobs on the dated API (leave api_version unset)")
        return super().batch_translator()

    # -- errors ---------------------------------------------------------------------------------------

    def parse_error(self, status: int, body: bytes) -> ErrorInfo:
        """OpenAI's shape; a content-filter refusal also names its filtered categories."""
        info = super().parse_error(status, body)
        if "content_filter" not in info.codes:
            return info
        categories = filtered_categories(body)
        return ErrorInfo(f"Azure content filter [{', '.join(categories)}]: {info.message}", info.codes,
                         info.request_id, tuple(categories))


def configured_in_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``auto`` should try Azure: both AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT are set."""
    env = os.environ if environ is None else environ
    return bool(env.get(KEY_ENV, "").strip() and env.get(ENDPOINT_ENV, "").strip())


def filtered_categories(body: bytes) -> list[str]:
    """The categories with ``filtered: true`` in ``error.innererror.content_filter_result`` (sorted)."""
    try:
        data = jsonio.loads(body)
    except LLMConnectorError:
        return []
    error = data.get("error") if isinstance(data, dict) else None
    inner = error.get("innererror") if isinstance(error, dict) else None
    result = inner.get("content_filter_result") if isinstance(inner, dict) else None
    if not isinstance(result, dict):
        return []
    return sorted(name for name, verdict in result.items()
                  if isinstance(name, str) and re.fullmatch(r"[a-z_]{1,40}", name)
                  and isinstance(verdict, dict) and verdict.get("filtered") is True)
