"""Which connector a command talks to, and where: a failure names the address it used.

``-p`` picks a provider; ``--base-url`` without ``-p`` is any OpenAI-compatible server, keyless
unless ``--api-key-env`` names the key's variable. A network failure or a 404 is re-raised as a
:class:`~.errors.LocatedError` saying ``provider at host:port`` and what sets that address.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..errors import AllProvidersFailedError, ConfigurationError, LLMConnectorError, NetworkError, NotFoundError
from .errors import LocatedError, UsageError

__all__ = ["address_source", "connected", "endpoint"]


def _connector_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if getattr(args, "timeout", None) is not None:
        kwargs["timeout"] = args.timeout
    if getattr(args, "base_url", None):
        kwargs["base_url"] = args.base_url
    if getattr(args, "api_key_env", None):
        kwargs["api_key"] = _key_from_env(args.api_key_env)
    if getattr(args, "allow_http", False):
        kwargs["allow_insecure_http"] = True
    return kwargs


def _key_from_env(name: str) -> str:
    key = os.environ.get(name, "").strip()
    if not key:
        raise ConfigurationError(f"--api-key-env {name}: the environment variable {name} is not set or is empty")
    return key


def _connection(args: argparse.Namespace) -> Any:
    """What to ``async with``: the provider of ``-p``, or any OpenAI-compatible server at ``--base-url``."""
    from ..factory import get_connector

    kwargs = _connector_kwargs(args)
    if args.provider != "auto":
        return get_connector(args.provider, **kwargs)
    if "base_url" in kwargs:
        # Not the `openai` provider: that one requires a key and would send OPENAI_API_KEY to
        # whatever server this is. The key, if any, comes from --api-key-env only.
        from ..connectors.openai_compat import OpenAICompatibleConnector

        return OpenAICompatibleConnector(**kwargs)
    if "api_key" in kwargs:
        raise UsageError("--api-key-env needs -p PROVIDER or --base-url: a key is for one server, not a chain")
    return get_connector("auto", **kwargs)


@contextlib.asynccontextmanager
async def connected(args: argparse.Namespace) -> AsyncIterator[Any]:
    """The connector for the command; a network failure or a 404 names the address it used."""
    async with _connection(args) as conn:
        try:
            yield conn
        except (NetworkError, NotFoundError, AllProvidersFailedError) as exc:
            where = _where(conn, exc, from_flag=bool(getattr(args, "base_url", None)))
            if not where:
                raise
            raise LocatedError(exc, where) from exc


def _where(conn: Any, error: LLMConnectorError, *, from_flag: bool) -> str:
    """``provider at host:port (set VAR to change it)`` for each member the failure came from."""
    causes = error.errors if isinstance(error, AllProvidersFailedError) else [error]
    located = [e for e in causes if isinstance(e, (NetworkError, NotFoundError))]
    members = getattr(conn, "members", [conn])
    places = [_address(m, from_flag=from_flag) for m in members
              if any(e.provider in (None, m.provider) for e in located)]
    return "; ".join(dict.fromkeys(places))


def endpoint(connector: Any) -> str:
    """``host:port`` of a connector's base URL: no user info, path or query (a key may hide there)."""
    url = httpx.URL(connector.base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{port}"


def address_source(connector: Any, *, from_flag: bool = False) -> str:
    """What sets the address, so the user knows what to change."""
    if from_flag:
        return "set by --base-url"
    env = connector.definition.base_url_env
    return f"set {env} to change it" if env else ""


def _address(connector: Any, *, from_flag: bool) -> str:
    source = address_source(connector, from_flag=from_flag)
    return f"{connector.provider} at {endpoint(connector)}" + (f" ({source})" if source else "")

