"""The command line's arguments: the argparse parser, and the options and input of a command.

:func:`parse` returns an exit code instead of exiting when argparse stops (``--help``,
``--version``, a bad argument), so tests and embedding programs can call the entry point.
Mistakes argparse cannot see (an unknown provider, a malformed ``-o``, no prompt) raise
:class:`~.errors.UsageError`: exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..errors import ConfigurationError
from .errors import EXIT_USAGE, UsageError
from .output import TABLE_WIDTH

__all__ = ["check_provider", "chosen_model", "parse", "parse_options", "read_stdin"]

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

    batch = commands.add_parser("batch", parents=[common], help="provider batch jobs: submit, status, results",
                                description="Submit many chats as one provider batch job (about half price, results "
                                            "within 24 h; Claude, OpenAI, Mistral), follow it and read its results.")
    batch.add_argument("action", choices=("submit", "status", "results", "cancel", "list"))
    batch.add_argument("target", nargs="?", help="submit: a JSONL file of items (custom_id, messages, options); "
                                                 "status, results, cancel: the job id")
    _provider_options(batch)
    batch.add_argument("--wait", action="store_true", help="submit, status: poll until the job ends (with progress)")
    batch.add_argument("--poll", type=_seconds, default=30.0, help="seconds between polls while waiting (30)")
    batch.add_argument("--json", action="store_true", help="machine-readable job status")

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


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
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


def check_provider(spec: str) -> None:
    """Unknown provider ids are usage mistakes (exit 2), with the registry's did-you-mean."""
    from ..registry import connector_class, is_provider_id

    provider = spec.partition(":")[0]
    if provider != "auto" and not is_provider_id(provider):
        try:
            connector_class(provider)
        except ConfigurationError as exc:
            raise UsageError(exc.message) from None


def chosen_model(args: argparse.Namespace) -> str | None:
    """``-m``, else the model in ``-p provider:model`` (for embeddings too, whose default differs)."""
    return args.model or args.provider.partition(":")[2] or None


def read_stdin(what: str) -> str:
    """All of stdin, when the input was not given as arguments; a usage error on a terminal."""
    stdin = sys.stdin
    isatty = getattr(stdin, "isatty", None)
    if stdin is None or (isatty is not None and isatty()):
        raise UsageError(f"no {what}: pass it as an argument or pipe it on stdin")
    return stdin.read()


def parse(argv: Sequence[str]) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code when argparse stops (help, version, a mistake)."""
    # argparse exits on --help, --version and bad arguments (after printing); the entry function
    # returns the code instead, so tests and embedding programs can call it.
    try:
        return _parser().parse_args(argv)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else EXIT_USAGE
