"""Azure OpenAI's wire for the conformance suite: OpenAI's, under ``/openai/v1`` (the v1 API).

The dated API (``/openai/deployments/{deployment}/...?api-version=``) is the same wire on other
paths; tests/providers/test_azure_openai.py runs the suite over it with :class:`AzureDatedWireKit`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..base import BaseConnector
from .openai_wire import OpenAIWireKit

__all__ = ["AzureOpenAIWireKit"]


class AzureOpenAIWireKit(OpenAIWireKit):
    """The v1 API: ``{endpoint}/openai/v1/chat/completions``, the deployment in the body."""

    provider_id = "azure_openai"
    connector_path = "llm_connectors.connectors.azure_openai:AzureOpenAIConnector"
    base_path = "/openai/v1"
    chat_path = "/openai/v1/chat/completions"
    #: ``api_version`` given to the connector (``None``: the v1 API).
    api_version: ClassVar[str | None] = None

    def make_connector(self, base_url: str, **kwargs: Any) -> BaseConnector:
        # Deployments are the caller's names: Azure has no default model, the suite calls with none.
        kwargs.setdefault("default_model", self.model)
        kwargs.setdefault("default_embedding_model", "fake-embed")
        if self.api_version is not None:
            kwargs.setdefault("api_version", self.api_version)
        return super().make_connector(base_url, **kwargs)
