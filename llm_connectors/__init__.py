"""llm-connectors: one class-based async interface to every LLM provider.

    import llm_connectors as lc

    async with lc.get_connector("openai") as conn:
        resp = await conn.generate_chat(None, [{"role": "user", "content": "Hello"}])
        print(resp.content)

Names are loaded on first use, so ``import llm_connectors`` stays cheap and imports no
provider module and no optional dependency.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__

# A library must not print through Python's last-resort handler; applications configure logging.
logging.getLogger("llm_connectors").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from . import errors
    from ._secrets import Secret
    from .base import BaseConnector
    from .definition import AuthSpec, Capability, ParameterDefinition, ServiceDefinition
    from .errors import (
        AllProvidersFailedError,
        AuthenticationError,
        CircuitOpenError,
        ConfigurationError,
        ContentFilterError,
        ContextWindowExceededError,
        InsecureTLSWarning,
        InvalidRequestError,
        LLMConnectorError,
        NetworkError,
        NoProviderAvailableError,
        NotFoundError,
        OverloadedError,
        PermissionDeniedError,
        ProtocolError,
        ProviderError,
        QuotaExceededError,
        RateLimitError,
        StreamInterruptedError,
        TimeoutError,
        UnsupportedCapabilityError,
    )
    from .factory import ConnectorHandle, get_connector
    from .fallback import FallbackConnector
    from .hooks import HookContext, Hooks
    from .http.settings import PoolLimits, Timeouts
    from .pricing import Price, estimate_cost, set_price
    from .registry import (
        describe,
        provider_ids,
        register_connector,
        register_openai_compatible,
    )
    from .requests import ChatRequest, EmbeddingRequest, HTTPRequest
    from .resilience.cache import CacheConfig
    from .resilience.config import CircuitBreakerConfig, RateLimit, RetryPolicy
    from .resilience.shared import SharedState
    from .stream import ChatStream, OpenStream, StreamDecoder
    from .types import (
        ChatChunk,
        ChatResponse,
        EmbeddingResponse,
        Message,
        ModelInfo,
        ReasoningBlock,
        ToolCall,
        Usage,
    )
    from .wire.classify import ErrorInfo, parse_error_body
    from .wire.framing import SSEEvent
    from .wire.jsonio import decode_json

# public name -> defining module (relative); loaded by __getattr__ on first access.
_LAZY: dict[str, str] = {
    "AllProvidersFailedError": ".errors",
    "AuthSpec": ".definition",
    "AuthenticationError": ".errors",
    "BaseConnector": ".base",
    "CacheConfig": ".resilience.cache",
    "Capability": ".definition",
    "ChatChunk": ".types",
    "ChatRequest": ".requests",
    "ChatResponse": ".types",
    "ChatStream": ".stream",
    "CircuitBreakerConfig": ".resilience.config",
    "CircuitOpenError": ".errors",
    "ConfigurationError": ".errors",
    "ConnectorHandle": ".factory",
    "ContentFilterError": ".errors",
    "ContextWindowExceededError": ".errors",
    "EmbeddingRequest": ".requests",
    "EmbeddingResponse": ".types",
    "ErrorInfo": ".wire.classify",
    "FallbackConnector": ".fallback",
    "HTTPRequest": ".requests",
    "HookContext": ".hooks",
    "Hooks": ".hooks",
    "InsecureTLSWarning": ".errors",
    "InvalidRequestError": ".errors",
    "LLMConnectorError": ".errors",
    "Message": ".types",
    "ModelInfo": ".types",
    "NetworkError": ".errors",
    "NoProviderAvailableError": ".errors",
    "NotFoundError": ".errors",
    "OpenStream": ".stream",
    "OverloadedError": ".errors",
    "ParameterDefinition": ".definition",
    "PermissionDeniedError": ".errors",
    "PoolLimits": ".http.settings",
    "Price": ".pricing",
    "ProtocolError": ".errors",
    "ProviderError": ".errors",
    "QuotaExceededError": ".errors",
    "RateLimit": ".resilience.config",
    "RateLimitError": ".errors",
    "ReasoningBlock": ".types",
    "RetryPolicy": ".resilience.config",
    "SSEEvent": ".wire.framing",
    "Secret": "._secrets",
    "ServiceDefinition": ".definition",
    "SharedState": ".resilience.shared",
    "StreamDecoder": ".stream",
    "StreamInterruptedError": ".errors",
    "TimeoutError": ".errors",
    "Timeouts": ".http.settings",
    "ToolCall": ".types",
    "UnsupportedCapabilityError": ".errors",
    "Usage": ".types",
    "decode_json": ".wire.jsonio",
    "describe": ".registry",
    "estimate_cost": ".pricing",
    "get_connector": ".factory",
    "parse_error_body": ".wire.classify",
    "provider_ids": ".registry",
    "register_connector": ".registry",
    "register_openai_compatible": ".registry",
    "set_price": ".pricing",
}

__all__ = [
    "AllProvidersFailedError",
    "AuthSpec",
    "AuthenticationError",
    "BaseConnector",
    "CacheConfig",
    "Capability",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ChatStream",
    "CircuitBreakerConfig",
    "CircuitOpenError",
    "ConfigurationError",
    "ConnectorHandle",
    "ContentFilterError",
    "ContextWindowExceededError",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "ErrorInfo",
    "FallbackConnector",
    "HTTPRequest",
    "HookContext",
    "Hooks",
    "InsecureTLSWarning",
    "InvalidRequestError",
    "LLMConnectorError",
    "Message",
    "ModelInfo",
    "NetworkError",
    "NoProviderAvailableError",
    "NotFoundError",
    "OpenStream",
    "OverloadedError",
    "ParameterDefinition",
    "PermissionDeniedError",
    "PoolLimits",
    "Price",
    "ProtocolError",
    "ProviderError",
    "QuotaExceededError",
    "RateLimit",
    "RateLimitError",
    "ReasoningBlock",
    "RetryPolicy",
    "SSEEvent",
    "Secret",
    "ServiceDefinition",
    "SharedState",
    "StreamDecoder",
    "StreamInterruptedError",
    "TimeoutError",
    "Timeouts",
    "ToolCall",
    "UnsupportedCapabilityError",
    "Usage",
    "__version__",
    "decode_json",
    "describe",
    "errors",
    "estimate_cost",
    "get_connector",
    "parse_error_body",
    "provider_ids",
    "register_connector",
    "register_openai_compatible",
    "set_price",
]


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module(".errors", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_connectors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
