"""What a new user does first, run inside a clean virtualenv holding only the built wheel.

``scripts/clean_install.py`` creates the venv, installs the wheel (with no extras, or one) and
runs this file from a folder outside the checkout, so only the installed package can be
imported. It uses nothing but the standard library and the package itself (plus trio for
``--backend trio``), and checks against ``llm_connectors.testing``'s loopback server:

- the package comes from site-packages, its metadata names the distribution and the license;
- chat, streamed chat and embeddings, on the chosen backend;
- the README's quickstart, executed as written (asyncio), against that server;
- the command line: ``--help``, ``providers`` and ``chat``;
- with ``--extra``, what that extra adds: the aiohttp engine, shared state in a real Redis,
  OpenTelemetry spans through the API alone, the offline model, the conformance suite's import.

Exit status 0 when every check passed; otherwise the first failure is raised.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DISTRIBUTION = "llm-connectors-sdk"
ANSWER = "Paris is the capital of France."


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"install smoke FAILED: {what}")


def check_installed(checkout: Path) -> None:
    import llm_connectors

    where = Path(llm_connectors.__file__).resolve()
    check(checkout not in where.parents, f"llm_connectors was imported from the checkout ({where})")
    dist = importlib.metadata.distribution(DISTRIBUTION)
    check(dist.version == llm_connectors.__version__, f"metadata version {dist.version}")
    files = [str(f) for f in dist.files or ()]
    check(any(f.endswith("licenses/LICENSE") for f in files), f"no license file in the wheel: {files[:5]}...")


async def exercise(conn: Any) -> None:
    """One chat, one stream and one embedding through ``conn``, checked against the fake's answers."""
    resp = await conn.generate_chat(None, [{"role": "user", "content": "Capital of France?"}], max_tokens=32)
    check(resp.content == ANSWER and resp.finish_reason == "stop", f"chat answered {resp!r}")
    pieces = []
    async with conn.generate_chat_stream(None, "Capital of France?", max_tokens=32) as stream:
        async for chunk in stream:
            pieces.append(chunk.delta)
    check("".join(pieces) == ANSWER == stream.response.content, f"stream gave {pieces!r}")
    emb = await conn.generate_embedding(None, ["one", "two"])
    check(len(emb.embeddings) == 2 and all(len(v) == 8 for v in emb.embeddings), "embeddings")


def run_backend(backend: str, url: str, extra: str | None, redis_url: str | None) -> None:
    import anyio

    import llm_connectors as lc

    settings: dict[str, Any] = {"api_key": "sk-smoke", "base_url": url, "timeout": 30}
    if extra == "fast":
        settings["transport"] = "aiohttp"
    if extra == "redis":
        settings["shared_state"] = redis_url
        settings["rate_limit"] = lc.RateLimit(requests_per_minute=600)

    async def main() -> None:
        async with await lc.get_connector("openai", **settings) as conn:
            await exercise(conn)
            if extra == "fast":
                check("aiohttp" in sys.modules, "the aiohttp engine was not used")
            if extra == "otel":
                check("opentelemetry.trace" in sys.modules, "no OpenTelemetry span was made")

    anyio.run(main, backend=backend)


def run_readme_quickstart(readme: Path) -> None:
    """The README's first Python block under "Quickstart", executed unchanged."""
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## Quickstart"):]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    check(found is not None, "no python block under ## Quickstart in the README")
    assert found is not None
    code = compile(found.group(1), f"{readme}:quickstart", "exec")
    exec(code, {"__name__": "__quickstart__"})


def run_local_model() -> None:
    import anyio

    import llm_connectors as lc

    async def main() -> None:
        async with await lc.get_connector("local") as conn:
            resp = await conn.generate_chat(None, "Say hello.", max_tokens=8, temperature=0)
            check(bool(resp.content.strip()) and resp.provider == "local", f"local model answered {resp!r}")

    anyio.run(main)


def run_cli(env: dict[str, str]) -> None:
    cli = shutil.which("llm-connectors", path=str(Path(sys.executable).parent))
    check(cli is not None, "the llm-connectors command was not installed")
    assert cli is not None

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, *argv], capture_output=True, text=True, env=env, timeout=120, check=False)

    helped = run("--help")
    check(helped.returncode == 0 and "chat" in helped.stdout, f"--help: {helped.stderr}")
    listed = run("providers")
    check(listed.returncode == 0 and "openai" in listed.stdout, f"providers: {listed.returncode} {listed.stderr}")
    chatted = run("chat", "-p", "openai", "Capital of France?")
    check(chatted.returncode == 0 and ANSWER in chatted.stdout, f"chat: {chatted.returncode} {chatted.stderr}")
    for result in (helped, listed, chatted):
        check("Traceback" not in result.stderr, result.stderr)


def start_redis(binary: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="smoke-redis-")
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no", "--dir", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    server.kill()
    raise SystemExit(f"install smoke FAILED: redis-server did not start on {port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkout", type=Path, required=True, help="the source checkout (must not be imported)")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--extra", choices=("fast", "redis", "otel", "local", "testing"))
    parser.add_argument("--redis-server", help="a redis-server binary, for --extra redis")
    args = parser.parse_args()
    check_installed(args.checkout.resolve())

    from llm_connectors.testing import FakeServer
    from llm_connectors.testing.openai_wire import OpenAIFake

    with FakeServer(OpenAIFake(ANSWER)) as server:
        url = server.url + "/v1"
        env = {**os.environ, "OPENAI_API_KEY": "sk-smoke", "OPENAI_BASE_URL": url,
               "OLLAMA_HOST": "http://127.0.0.1:9", "LLM_CONNECTORS_PROVIDERS": "openai"}
        os.environ.update(env)
        redis = start_redis(args.redis_server) if args.extra == "redis" else None
        try:
            run_backend(args.backend, url, args.extra, redis[1] if redis else None)
        finally:
            if redis:
                redis[0].kill()
                redis[0].wait()
        if args.extra is None and args.backend == "asyncio":
            run_readme_quickstart(args.checkout / "README.md")
            run_cli(env)
    if args.extra == "local":
        run_local_model()
    if args.extra == "testing":
        import llm_connectors.testing.conformance as conformance

        check(hasattr(conformance, "ConnectorConformance"), "the conformance suite")
    print(f"install smoke ok: backend={args.backend} extra={args.extra or '-'} python={sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
