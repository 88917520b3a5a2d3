"""Which async library runs the current task (and which loop), without sniffio as a dependency.

anyio (>= 4.15) and httpx (0.29) no longer install sniffio, so we cannot import it
unconditionally. Only trio (or trio-asyncio) can be running when ``trio`` was imported, and trio
depends on sniffio, so then sniffio is present and gives the exact answer (trio-asyncio's modes
included). With trio never imported, only asyncio can be running: one dictionary look-up.
"""

from __future__ import annotations

import sys

__all__ = ["current_async_library", "current_loop_token"]


def current_async_library() -> str:
    """``"asyncio"`` or ``"trio"`` (or another name sniffio reports); RuntimeError outside a loop."""
    if "trio" in sys.modules:
        import sniffio  # trio requires it

        try:
            return sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            raise RuntimeError("no async library is running in this thread") from None
    aio = sys.modules.get("asyncio")  # not imported: no asyncio loop runs (and we do not import it)
    if aio is None or aio._get_running_loop() is None:
        raise RuntimeError("no async library is running in this thread")
    return "asyncio"


def current_loop_token() -> object:
    """An object identifying the running event loop (asyncio loop or trio run).

    Called a few times per call (the limiter and cooldown tables are per loop), so plain asyncio
    is answered by :func:`current_async_library`'s look-up without probing further.
    """
    if current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_root_task()
    import asyncio

    return asyncio.get_running_loop()
