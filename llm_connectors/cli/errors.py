"""How the command line fails: exit codes, and one readable line on stderr with nothing secret.

Every way out of a command becomes an exit code (see :mod:`llm_connectors.cli`). Errors from a
task group arrive wrapped in (nested) exception groups: the one worth reporting is picked out.
Messages name the command-line flag rather than the library's keyword, and never show a URL
password or a key from the environment; an internal error (a bug) is one line, or its traceback
with ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from typing import IO

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

from .._secrets import scrub
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    LLMConnectorError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedCapabilityError,
)
from .output import paint

__all__ = [
    "EXIT_AUTH",
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_CONFIGURED",
    "EXIT_OK",
    "EXIT_USAGE",
    "LocatedError",
    "UsageError",
    "exit_code",
    "failed",
    "redact",
]

EXIT_OK = 0
EXIT_FAILED = 1  # also an internal error (a bug): one line, the traceback with --debug
EXIT_USAGE = 2
EXIT_NOT_CONFIGURED = 3
EXIT_AUTH = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a pipe closed early (128 + SIGPIPE)


class UsageError(Exception):
    """A mistake on the command line, found by us rather than by argparse."""


class LocatedError(Exception):
    """A provider failure plus where the command was talking to (host:port, what sets it)."""

    def __init__(self, error: LLMConnectorError, where: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.where = where


# -- exit codes and messages ----------------------------------------------------------------------

def exit_code(error: LLMConnectorError) -> int:
    """The exit code for a library error (see :mod:`llm_connectors.cli`)."""
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


def redact(text: str, key_var: str | None = None) -> str:
    """No URL password and no key from the environment, whatever produced ``text``."""
    text = _QUERY.sub(r"\1?***", _USERINFO.sub("***@", text))
    names = [name for name in os.environ if _SECRET_VAR.search(name)] + ([key_var] if key_var else [])
    keys = [value for name in names if len(value := os.environ.get(name, "").strip()) >= 8]
    return scrub(text, keys)


def _clean(text: str, key_var: str | None = None) -> str:
    """An error message as the command line says it: flag names for keywords, nothing secret."""
    for pattern, flag in _FLAG_WORDS:
        text = pattern.sub(flag, text)
    return redact(text, key_var)


def _report(message: str, err: IO[str], key_var: str | None = None) -> None:
    err.write(paint("error:", "31", err) + " " + _clean(message, key_var) + "\n")
    err.flush()


# -- reporting what a command raised ---------------------------------------------------------------

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


def failed(raised: BaseException, args: argparse.Namespace, err: IO[str]) -> int:
    """Report what a command raised (one line on ``err``) and return its exit code."""
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
        err.write(redact("".join(traceback.format_exception(type(raised), raised, raised.__traceback__)), key_var))
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
