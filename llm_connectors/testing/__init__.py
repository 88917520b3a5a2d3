"""Test doubles shipped with the package: a real loopback HTTP server and provider fakes.

Plugin authors can use them (and the conformance suite, once they have a connector) to test
their own connectors exactly the way the built-ins are tested.
"""

from .server import FakeServer, Reply, Request

__all__ = ["FakeServer", "Reply", "Request"]
