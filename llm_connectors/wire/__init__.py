"""Provider wire formats, as pure functions: bytes and JSON in, values and typed errors out.

``framing.py`` (SSE and NDJSON framing), ``classify.py`` (error bodies to typed errors),
``headers.py`` (Retry-After, x-should-retry, request ids), ``jsonio.py`` (strict JSON),
``messages.py`` (the neutral message shape every translator starts from).
"""
