"""Any OpenAI-compatible server in one call: here llama.cpp's own server, started by this script.

    python examples/openai_compatible.py                  # starts llama_cpp.server (the `server` extra)
    LLAMA_SERVER_URL=http://127.0.0.1:8000 python examples/openai_compatible.py   # or use yours

llama.cpp's server, vLLM, LM Studio, Groq, Together and more are presets: ``get_connector("llamacpp")``
with no registration (docs/providers/presets.md); any other compatible service is one
``register_openai_compatible`` call. The connector is then used like every other
(``"llamacpp:model"`` sets the model).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import anyio
import httpx

import llm_connectors as lc


@contextlib.contextmanager
def llama_server() -> Iterator[str]:
    """The URL of a llama.cpp server: LLAMA_SERVER_URL, or one started here and stopped after."""
    given = os.environ.get("LLAMA_SERVER_URL")
    if given:
        yield given.rstrip("/")
        return
    from llm_connectors.local.default_model import default_model_path

    model = os.environ.get("LLM_CONNECTORS_LOCAL_MODEL") or default_model_path()
    if model is None:
        raise SystemExit("no model to serve: pip install 'llm-connectors-sdk[local,server]' and run "
                         "`llm-connectors fetch-model`, or set LLAMA_SERVER_URL")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2",
               "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # up to a minute for imports and the model load
            if server.poll() is not None:
                raise SystemExit("llama_cpp.server did not start: pip install 'llm-connectors-sdk[server]'")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/v1/models", timeout=1).is_success:
                    break
            time.sleep(0.1)
        else:
            raise SystemExit("llama_cpp.server did not answer within a minute")
        print(f"started llama_cpp.server on {url}")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


async def main(url: str) -> int:
    # llama.cpp's server is a preset (its default address is 127.0.0.1:8080/v1; this one runs elsewhere).
    # A service without a preset is one call: lc.register_openai_compatible("myservice", base_url=...,
    # api_key_env="MYSERVICE_API_KEY"), then lc.get_connector("myservice:model").
    async with lc.get_connector("llamacpp:smollm2", base_url=url + "/v1") as conn:
        print("models:", [m.id for m in await conn.list_models()])
        resp = await conn.generate_chat(None, [
            {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"}], max_tokens=40, temperature=0)
        print(f"[{resp.provider}/{resp.model}] {resp.content.strip()}")
        async for chunk in conn.generate_chat_stream(None, "Count to five.", max_tokens=30):
            print(chunk.delta, end="", flush=True)
        print()
    return 0


if __name__ == "__main__":
    with llama_server() as server_url:
        code = anyio.run(main, server_url)
    sys.exit(code)
