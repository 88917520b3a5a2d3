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

from ._version import __version__ as __version__

# A library must not print through Python's last-resort handler; applications configure logging.
logging.getLogger("llm_connectors").addHandler(logging.NullHandler())

if TYPE_CHECKING:  # for type checkers: `X as X` re-exports; at run time _LAZY below loads each name
    from . import errors as errors
    from ._secrets import Secret as Secret
    from .base import BaseConnector as BaseConnector
    from .batches import BatchCounts as BatchCounts, BatchJob as BatchJob
    from .catalog import models as models, register_model as register_model
    from .definition import (
        AuthSpec as AuthSpec,
        Capability as Capability,
        ParameterDefinition as ParameterDefinition,
        ServiceDefinition as ServiceDefinition,
    )
    from .errors import (
        AllProvidersFailedError as AllProvidersFailedError,
        AuthenticationError as AuthenticationError,
        CircuitOpenError as CircuitOpenError,
        ConfigurationError as ConfigurationError,
        ContentFilterError as ContentFilterError,
        ContextWindowExceededError as ContextWindowExceededError,
        InsecureTLSWarning as InsecureTLSWarning,
        InvalidRequestError as InvalidRequestError,
        LLMConnectorError as LLMConnectorError,
        ModelDeprecationWarning as ModelDeprecationWarning,
        NetworkError as NetworkError,
        NoProviderAvailableError as NoProviderAvailableError,
        NotFoundError as NotFoundError,
        OverloadedError as OverloadedError,
        PermissionDeniedError as PermissionDeniedError,
        ProtocolError as ProtocolError,
        ProviderError as ProviderError,
        QuotaExceededError as QuotaExceededError,
        RateLimitError as RateLimitError,
        StreamInterruptedError as StreamInterruptedError,
        TimeoutError as TimeoutError,
        UnsupportedCapabilityError as UnsupportedCapabilityError,
    )
    from .factory import ConnectorHandle as ConnectorHandle, get_connector as get_connector
    from .fallback import FallbackConnector as FallbackConnector
    from .hooks import HookContext as HookContext, Hooks as Hooks
    from .http.settings import PoolLimits as PoolLimits, Timeouts as Timeouts
    from .pricing import Price as Price, estimate_cost as estimate_cost, set_price as set_price
    from .registry import (
        describe as describe,
        provider_ids as provider_ids,
        register_connector as register_connector,
        register_openai_compatible as register_openai_compatible,
    )
    from .requests import (
        ChatRequest as ChatRequest,
        EmbeddingRequest as EmbeddingRequest,
        HTTPRequest as HTTPRequest,
    )
    from .resilience.cache import CacheConfig as CacheConfig
    from .resilience.config import (
        CircuitBreakerConfig as CircuitBreakerConfig,
        RateLimit as RateLimit,
        RetryPolicy as RetryPolicy,
    )
    from .resilience.shared import SharedState as SharedState
    from .stream import ChatStream as ChatStream, OpenStream as OpenStream, StreamDecoder as StreamDecoder
    from .types import (
        ChatChunk as ChatChunk,
        ChatResponse as ChatResponse,
        EmbeddingResponse as EmbeddingResponse,
        Message as Message,
        ModelInfo as ModelInfo,
        ReasoningBlock as ReasoningBlock,
        TokenCount as TokenCount,
        ToolCall as ToolCall,
        Usage as Usage,
    )
    from .wire.classify import ErrorInfo as ErrorInfo, parse_error_body as parse_error_body
    from .wire.framing import SSEEvent as SSEEvent
    from .wire.jsonio import decode_json as decode_json

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
    "ModelDeprecationWarning": ".errors",
    "BatchCounts": ".batches",
    "BatchJob": ".batches",
    "TokenCount": ".types",
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
    "models": ".catalog",
    "register_model": ".catalog",
    "parse_error_body": ".wire.classify",
    "provider_ids": ".registry",
    "register_connector": ".registry",
    "register_openai_compatible": ".registry",
    "set_price": ".pricing",
}

__all__ = sorted(["__version__", "errors", *_LAZY])


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
