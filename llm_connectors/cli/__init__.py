"""``llm-connectors``: every provider from a shell (also ``python -m llm_connectors``).

    llm-connectors providers                         what is configured and reachable
    llm-connectors chat "What is the capital of France?"
    echo "Summarise this" | llm-connectors chat -p claude --system "Be brief." -o temperature=0.2
    llm-connectors models ollama
    llm-connectors embed "first text" "second text" -p openai
    llm-connectors chat --base-url http://127.0.0.1:8000/v1 -m my-model "Hello"   a keyless local server
    llm-connectors describe mistral                  the service definition, as JSON
    llm-connectors fetch-model                       download the offline model (once)
    llm-connectors batch submit items.jsonl -p claude --wait   a provider batch job (half price)

Exit codes, so scripts can react: 0 done; 1 the provider failed (network, server error, rate
limit, every provider of a chain failed) or an internal error; 2 a usage mistake (bad arguments,
unknown provider, model or option, a capability the provider lacks); 3 not configured (no key,
nothing usable); 4 the provider refused the credentials; 130 interrupted; 141 stdout closed
early. Errors are one readable line on stderr, never a traceback (``--debug`` prints one for an
internal error); keys never appear. Colour only when the stream is a terminal (and ``NO_COLOR``
is unset).

The parts: :mod:`.arguments` (the parser, options and input), :mod:`.connection` (which
connector, at which address), :mod:`.commands` (one coroutine per command), :mod:`.output`
(tables, colour, progress, JSON) and :mod:`.errors` (exit codes and the one-line report).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

import anyio

from .arguments import parse
from .commands import COMMANDS
from .errors import (
    EXIT_AUTH,
    EXIT_BROKEN_PIPE as EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED as EXIT_INTERRUPTED,
    EXIT_NOT_CONFIGURED,
    EXIT_OK,
    EXIT_USAGE,
    exit_code as exit_code,
    failed,
)

__all__ = ["EXIT_AUTH", "EXIT_FAILED", "EXIT_NOT_CONFIGURED", "EXIT_OK", "EXIT_USAGE", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    out, err = sys.stdout, sys.stderr
    parsed = parse(list(sys.argv[1:] if argv is None else argv))
    if isinstance(parsed, int):
        return parsed
    try:
        return anyio.run(COMMANDS[parsed.command], parsed, out, err)
    except BaseException as raised:  # every way out is one line and an exit code, never a traceback
        return failed(raised, parsed, err)


def run() -> NoReturn:
    """``python -m llm_connectors``."""
    sys.exit(main())
