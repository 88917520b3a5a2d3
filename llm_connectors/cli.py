"""``llm-connectors``: every provider from a shell (also ``python -m llm_connectors``).

    llm-connectors providers                         what is configured and reachable
    llm-connectors chat "What is the capital of France?"
    echo "Summarise this" | llm-connectors chat -p claude --system "Be brief." -o temperature=0.2
    llm-connectors models ollama
    llm-connectors embed "first text" "second text" -p openai
    llm-connectors describe mistral                  the service definition, as JSON

Exit codes, so scripts can react: 0 done; 1 the provider failed (network, server error, rate
limit, every provider of a chain failed); 2 a usage mistake (bad arguments, unknown provider,
model or option, a capability the provider lacks); 3 not configured (no key, nothing
usable); 4 the provider refused the credentials; 130 interrupted. Errors are one readable line
on stderr, never a traceback; colour only when the stream is a terminal (and ``NO_COLOR`` is
unset).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import IO, Any, NoReturn

import anyio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

from . import __version__
from .errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    LLMConnectorError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedCapabilityError,
)

__all__ = ["EXIT_AUTH", "EXIT_FAILED", "EXIT_NOT_CONFIGURED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_CONFIGURED = 3
EXIT_AUTH = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a pipe closed early (128 + SIGPIPE)

_EPILOG = """\
exit codes: 0 ok; 1 provider failed; 2 usage mistake (arguments, unknown provider/model/option,
unsupported capability); 3 not configured (no key, nothing usable); 4 credentials refused;
130 interrupted.

environment: ANTHROPIC_API_KEY, OPENAI_API_KEY, MISTRAL_API_KEY, OLLAMA_HOST, *_BASE_URL,
LLM_CONNECTORS_PROVIDERS (order for "auto"), LLM_CONNECTORS_LOCAL_MODEL (a .gguf file).
"""


class UsageError(Exception):
    """A mistake on the command line, found by us rather than by argparse."""


# -- output helpers ---------------------------------------------------------------------------------

def _colour_on(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _paint(text: str, code: str, stream: IO[str]) -> str:
    return f"\033[{code}m{text}\033[0m" if _colour_on(stream) else text


def _table(rows: Sequence[Sequence[str]], header: Sequence[str], out: IO[str]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    out.write(_paint(line(header), "1", out) + "\n")
    for row in rows:
        out.write(line(row) + "\n")


class Progress:
    """A one-line progress bar on a terminal; silent when the stream is not one."""

    def __init__(self, total: int, label: str, stream: IO[str], width: int = 30) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.label = label
        self.stream = stream
        self.width = width
        isatty = getattr(stream, "isatty", None)
        self.enabled = bool(isatty and isatty())

    def advance(self, count: int) -> None:
        self.done = min(self.total, self.done + count)
        if self.enabled:
            filled = self.width * self.done // self.total
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _dump(value: Any, out: IO[str], *, compact: bool = False) -> None:
    # Vectors are long: one line for them, indented documents for everything a person reads.
    out.write(json.dumps(value, indent=None if compact else 2, ensure_ascii=False, default=str) + "\n")


# -- argument parsing -------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-connectors", description="Talk to any LLM provider through llm-connectors.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"llm-connectors {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    providers = commands.add_parser("providers", help="every registered provider: configured? reachable?",
                                    description="List every registered provider: is it configured, does it "
                                                "answer, what can it do, what state is its circuit breaker in.")
    providers.add_argument("--timeout", type=_seconds, default=5.0, help="seconds per reachability check (5)")
    providers.add_argument("--json", action="store_true", help="machine-readable output")

    chat = commands.add_parser("chat", help="ask a question; the answer streams to stdout",
                               description="Send a prompt (arguments, or stdin when piped) and stream the answer.")
    chat.add_argument("prompt", nargs="*", help="the prompt (default: read from stdin when it is piped)")
    _provider_options(chat)
    chat.add_argument("--system", help="a system message to send first")
    chat.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                      help="a request option, e.g. -o temperature=0.2 -o max_tokens=200 (JSON values allowed)")
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming")
    chat.add_argument("--json", action="store_true", help="print the complete response as JSON")
    chat.add_argument("-v", "--verbose", action="store_true", help="print who answered and the token counts")

    models = commands.add_parser("models", help="the models a provider offers",
                                 description="List the models a provider offers.")
    models.add_argument("provider", help="provider id (see `llm-connectors providers`)")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.add_argument("--timeout", type=_seconds, default=60.0, help="seconds before giving up (60)")

    embed = commands.add_parser("embed", help="embed texts (arguments or stdin lines) and print JSON",
                                description="Embed each text (arguments, or one per stdin line) and print JSON.")
    embed.add_argument("texts", nargs="*", help="texts to embed (default: one per line of stdin)")
    _provider_options(embed)
    embed.add_argument("--batch-size", type=_positive_int, default=64, help="texts per request (64)")
    embed.add_argument("--jsonl", action="store_true", help="one JSON line per text instead of one document")

    describe = commands.add_parser("describe", help="a provider's service definition, as JSON",
                                   description="Print a provider's service definition (id, auth, capabilities, "
                                               "parameters with types and ranges) as JSON.")
    describe.add_argument("provider", help="provider id (see `llm-connectors providers`)")
    return parser


def _provider_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--provider", default="auto",
                        help='provider id or "provider:model" (default "auto": every usable provider in turn)')
    parser.add_argument("-m", "--model", help="model id (default: the provider's default model)")
    parser.add_argument("--timeout", type=_seconds, default=None, help="seconds for the whole call")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _options(pairs: Sequence[str]) -> dict[str, Any]:
    """``-o key=value`` pairs: values are JSON when they parse as JSON, else plain strings."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"option {pair!r} is not KEY=VALUE (e.g. -o temperature=0.2)")
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return options


def _check_provider(spec: str) -> None:
    """Unknown provider ids are usage mistakes (exit 2), with the registry's did-you-mean."""
    from .registry import connector_class, is_provider_id

    provider = spec.partition(":")[0]
    if provider != "auto" and not is_provider_id(provider):
        try:
            connector_class(provider)
        except ConfigurationError as exc:
            raise UsageError(exc.message) from None


def _read_stdin(what: str) -> str:
    stdin = sys.stdin
    isatty = getattr(stdin, "isatty", None)
    if stdin is None or (isatty is not None and isatty()):
        raise UsageError(f"no {what}: pass it as an argument or pipe it on stdin")
    return stdin.read()


def _connector_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if getattr(args, "timeout", None) is not None:
        kwargs["timeout"] = args.timeout
    return kwargs


# -- commands ---------------------------------------------------------------------------------------

async def _providers(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .registry import connector_class, create_connector, provider_ids

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
                row["note"] = f"not reachable at {connector.base_url} (checked for up to {args.timeout:g} s)"
            breaker = connector.stats().get(connector.provider, {}).get("breaker")
            row["breaker"] = breaker.get("state") if isinstance(breaker, dict) else "off"
        finally:
            await connector.aclose()

    async with anyio.create_task_group() as tg:
        for row, connector in connectors:
            tg.start_soon(probe, row, connector)

    usable = [r["provider"] for r in rows if r["configured"] and r["reachable"]]
    if args.json:
        _dump(rows, out)
    else:
        def mark(value: bool | None) -> str:
            if value is None:
                return "-"
            return _paint("yes", "32", out) if value else _paint("no", "31", out)

        _table([(r["provider"], mark(r["configured"]), mark(r["reachable"]), ",".join(r["capabilities"]),
                 r["breaker"] or "-") for r in rows],
               ("PROVIDER", "CONFIGURED", "REACHABLE", "CAPABILITIES", "BREAKER"), out)
        notes = [(r["provider"], r["note"]) for r in rows if r["note"]]
        if notes:
            out.write("\n")
            for provider, note in notes:
                out.write(f"{provider}: {note}\n")
    if not usable:
        err.write(_paint("error:", "31", err) + " no provider is usable; set an API key (ANTHROPIC_API_KEY, "
                  "OPENAI_API_KEY, MISTRAL_API_KEY), start Ollama, or pip install 'llm-connectors[local]'\n")
        return EXIT_NOT_CONFIGURED
    return EXIT_OK


async def _chat(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .factory import get_connector

    _check_provider(args.provider)
    options = _options(args.option)
    prompt = " ".join(args.prompt) if args.prompt else _read_stdin("prompt")
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    started = time.perf_counter()
    async with get_connector(args.provider, **_connector_kwargs(args)) as conn:
        if args.no_stream or args.json:
            response = await conn.generate_chat(args.model, messages, **options)
            if not args.json:
                out.write(response.content)
        else:
            async with conn.generate_chat_stream(args.model, messages, **options) as stream:
                async for chunk in stream:
                    if chunk.delta:
                        out.write(chunk.delta)
                        out.flush()
            response = stream.response
    if args.json:
        _dump({"content": response.content, "provider": response.provider, "model": response.model,
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
        err.write(_paint(footer, "2", err) + "\n")
    return EXIT_OK


async def _models(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .factory import get_connector

    _check_provider(args.provider)
    async with get_connector(args.provider, **_connector_kwargs(args)) as conn:
        models = await conn.list_models()
    if args.json:
        _dump([{"id": m.id, "name": m.name, "created": m.created, "context_length": m.context_length}
               for m in models], out)
    elif models:
        _table([(m.id, m.name if m.name != m.id else "", str(m.context_length or "")) for m in models],
               ("ID", "NAME", "CONTEXT"), out)
    else:
        err.write(f"{args.provider} lists no models\n")
    return EXIT_OK


async def _embed(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .factory import get_connector
    from .types import Usage

    _check_provider(args.provider)
    texts = list(args.texts) if args.texts else [line for line in _read_stdin("texts").splitlines() if line.strip()]
    if not texts:
        raise UsageError("no texts to embed")
    vectors: list[list[float]] = []
    usage = Usage()
    provider = model = ""
    progress = Progress(len(texts), "embedding", err)
    async with get_connector(args.provider, **_connector_kwargs(args)) as conn:
        for start in range(0, len(texts), args.batch_size):
            batch = texts[start:start + args.batch_size]
            response = await conn.generate_embedding(args.model, batch)
            vectors.extend(response.embeddings)
            usage = usage + response.usage
            provider, model = response.provider, response.model
            progress.advance(len(batch))
    progress.close()
    if args.jsonl:
        for index, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
            out.write(json.dumps({"index": index, "text": text, "embedding": vector}) + "\n")
    else:
        _dump({"provider": provider, "model": model, "count": len(vectors),
               "dimensions": len(vectors[0]) if vectors else 0, "usage": asdict(usage), "embeddings": vectors}, out,
              compact=True)
    return EXIT_OK


async def _describe(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .registry import describe

    _check_provider(args.provider)
    if args.provider == "auto":
        raise UsageError("describe takes one provider id, not 'auto'")
    _dump(describe(args.provider.partition(":")[0]), out)
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, IO[str], IO[str]], Awaitable[int]]] = {
    "providers": _providers, "chat": _chat, "models": _models, "embed": _embed, "describe": _describe,
}


# -- errors and the entry point ---------------------------------------------------------------------

def exit_code(error: LLMConnectorError) -> int:
    """The exit code for a library error (see the module docstring)."""
    if isinstance(error, (AuthenticationError, PermissionDeniedError)):
        return EXIT_AUTH
    if isinstance(error, ConfigurationError):
        return EXIT_NOT_CONFIGURED
    if isinstance(error, (InvalidRequestError, UnsupportedCapabilityError, NotFoundError)):
        return EXIT_USAGE
    return EXIT_FAILED


def _report(message: str, err: IO[str]) -> None:
    err.write(_paint("error:", "31", err) + " " + message + "\n")
    err.flush()


def _parse(argv: Sequence[str]) -> argparse.Namespace | int:
    # argparse exits on --help, --version and bad arguments (after printing); the entry function
    # returns the code instead, so tests and embedding programs can call it.
    try:
        return _parser().parse_args(argv)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else EXIT_USAGE


def _unwrap(error: BaseException) -> BaseException:
    """The first error we know how to report inside (nested) task-group exception groups."""
    inner: tuple[BaseException, ...] = error.exceptions if isinstance(error, BaseExceptionGroup) else ()
    for candidate in inner:
        found = _unwrap(candidate)
        if isinstance(found, (LLMConnectorError, UsageError, KeyboardInterrupt)):
            return found
    return error


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    out, err = sys.stdout, sys.stderr
    parsed = _parse(list(sys.argv[1:] if argv is None else argv))
    if isinstance(parsed, int):
        return parsed
    command = _COMMANDS[parsed.command]
    try:
        try:
            return anyio.run(command, parsed, out, err)
        except BaseExceptionGroup as group:
            raise _unwrap(group) from None
    except UsageError as exc:
        _report(str(exc), err)
        return EXIT_USAGE
    except LLMConnectorError as exc:
        _report(f"{type(exc).__name__}: {exc.message}", err)
        return exit_code(exc)
    except KeyboardInterrupt:
        err.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    # The reader went away (`| head`): point stdout at /dev/null so the interpreter's final
    # flush does not raise a second BrokenPipeError on the way out.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run() -> NoReturn:
    """``python -m llm_connectors``."""
    sys.exit(main())
