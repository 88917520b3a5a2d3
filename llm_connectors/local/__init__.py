"""llama.cpp in this process, behind the ``local`` connector (``connectors/local.py``).

``runtime.py`` is the public face (re-exports); ``models.py`` finds, loads and unloads GGUF files
(:class:`~.models.LocalRuntime`); ``jobs.py`` runs generation on worker threads and hands chunks
to the event loop; ``transport.py`` serves the OpenAI routes as an httpx transport, with no
socket; ``default_model.py`` fetches the default model once into a cache.
"""
