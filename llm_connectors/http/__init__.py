"""How requests travel: one connector's HTTP side and the engines under it.

- ``sender.py``: :class:`~.sender.HTTPSender`, where a request is sent and its answer read,
  classified or streamed (the one place an attempt touches the network).
- ``config.py``: the connection settings, checked at construction; ``settings.py``: timeouts,
  pool limits, TLS trust, the client factory; ``urls.py``: which base URLs are allowed.
- ``engines.py``: the engine interface and httpx's engines; ``aiohttp_engine.py``: aiohttp's;
  ``engine_choice.py``: which one runs; ``pool.py``: engines shared per endpoint and loop.
- ``bodies.py``: bounded reads and deadlines; ``decode.py``: bounded decompression;
  ``credentials.py``: key lists, rotation and callables.
"""
