"""Which base URLs a connector may talk to (RELIABILITY.md §6.4).

``base_url`` is developer configuration, and the key is sent to it, so the defaults are strict:

* a connector that sends a key talks ``https``; plain ``http`` only to a loopback host
  (``http://localhost:11434``), unless ``allow_insecure_http=True`` (a keyless server, such as
  Ollama on your LAN, may use plain http);
* no user name or password in the URL;
* never a link-local or cloud-metadata address (``169.254.169.254``, ``fd00:ec2::254``...),
  however it is spelled (decimal, octal, hex, IPv4-mapped IPv6), unless
  ``allow_private_network=True``.

Host names are not resolved here; literal addresses and known metadata names are checked.
"""

from __future__ import annotations

import ipaddress
import re
import socket

import httpx

from ..errors import ConfigurationError

__all__ = ["check_base_url", "masked_url"]

_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"})
_METADATA_V6 = ipaddress.ip_network("fd00:ec2::254/128")


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host literal names, accepting every form the OS resolver accepts for IPv4."""
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # decimal (2852039166), octal (0251.0376.0251.0376), hex and short forms
            address = ipaddress.ip_address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _loopback(host: str) -> bool:
    if host.rstrip(".").lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    address = _literal_address(host)
    return address is not None and address.is_loopback


def _forbidden_network(host: str) -> str | None:
    name = host.rstrip(".").lower()
    if name in _METADATA_NAMES:
        return "a cloud metadata host"
    address = _literal_address(host)
    if address is None:
        return None
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address in _METADATA_V6:
        return "a cloud metadata address"
    return None


_USERINFO = re.compile(r"(?<=//)[^/?#@]*@")


def masked_url(url: str) -> str:
    """``url`` fit to show: user name and password replaced, a query string (which may hold a key) cut."""
    return _USERINFO.sub("***@", url).split("?", 1)[0][:200]


def check_base_url(url: object, *, allow_insecure_http: bool = False, allow_private_network: bool = False,
                   sends_credentials: bool = True) -> str:
    """Validate a configured base URL; return it without a trailing slash.

    Raises:
        ConfigurationError: naming what is wrong and the flag that allows it, if any.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"base_url must be a str, got {type(url).__name__}")
    shown = masked_url(url)
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ConfigurationError(f"base_url {shown!r} is not a valid URL") from None
    if parsed.userinfo:
        raise ConfigurationError(f"base_url {shown!r} must not contain a user name or password; use api_key")
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"base_url {shown!r} must be an absolute http:// or https:// URL, like https://api.example.com/v1")
    if port is not None and not 1 <= port <= 65535:
        raise ConfigurationError(f"base_url {shown!r} has port {port}; a port is between 1 and 65535")
    host = parsed.host
    if scheme == "http" and sends_credentials and not allow_insecure_http and not _loopback(host):
        raise ConfigurationError(
            f"base_url uses plain http to {host}, which would send the key unencrypted; use https, or pass "
            "allow_insecure_http=True for a network you trust (plain http to localhost is always allowed)")
    why = _forbidden_network(host)
    if why is not None and not allow_private_network:
        raise ConfigurationError(f"base_url host {host} is {why}; pass allow_private_network=True if you "
                                 "really mean it")
    return url.rstrip("/")
