"""Library failures the harness found and the library has not fixed yet: each one pinned, none hidden.

* :data:`KNOWN`: a case whose id matches one of these runs as ``xfail(strict=True)``. The day the
  library is fixed it passes, the strict xfail fails, and the entry must go. Ids are
  ``<provider>-<mode>:<case>`` (``-setup`` for the constructor table); an entry may start with
  ``httpx/`` or ``aiohttp/`` to pin one engine.
* :data:`KNOWN_PROBLEMS`: the random tier cannot pin an example, so a problem that is an instance of a
  finding listed in :data:`KNOWN` (same reason) is noted there instead of failing the run; any other
  problem fails it.
* :data:`PINNED_LEAKS`: a key leak with one root cause that shows in many cases is asserted by one
  dedicated strict-xfail test; the other cases leave it to that test (``judge(every_leak=False)``).

Each reason is one line; the harness's report lists a minimal reproduction for each.
"""

from __future__ import annotations

import re

import pytest

__all__ = ["KNOWN", "KNOWN_PROBLEMS", "PINNED_LEAKS", "known_problem", "xfail_marks"]

#: (regular expression over the case id, reason); ``fullmatch``, with or without an engine prefix. Empty: every
#: finding of the first runs (31 kinds, listed in CHANGELOG.md under issue 16) is fixed. A new one goes here as a
#: ``(pattern, one-line reason)`` until the library is fixed.
KNOWN: list[tuple[str, str]] = []
_KNOWN = [(re.compile(pattern), reason) for pattern, reason in KNOWN]

#: (pattern over "<case id>: <judge() problem>", reason): the random tier's view of the same findings. A case
#: id names the mutations ("openai-chat:null@choices.0.message.content+cut120"), so each pattern asks for the
#: mutation of its finding too.
KNOWN_PROBLEMS: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), reason) for pattern, reason in [
    # (none left: add the random tier's view of a new finding here, with its KNOWN entry)
]]

#: (where-prefix, text-prefix) of key leaks pinned by their own test (see the module docstring).
PINNED_LEAKS: tuple[tuple[str, str], ...] = ()  # (none left)


def xfail_marks(case_id: str, engine: str | None = None) -> list[pytest.MarkDecorator]:
    """``xfail(strict=True)`` if the case (on ``engine``, when given) is a known library failure."""
    names = [case_id] + ([f"{engine}/{case_id}"] if engine else [])
    for pattern, reason in _KNOWN:
        if any(pattern.fullmatch(name) for name in names):
            return [pytest.mark.xfail(strict=True, reason=f"library: {reason}")]
    return []


def known_problem(problem: str) -> str | None:
    """The finding ``problem`` ("<case id>: <judge() problem>") is an instance of, if a known one."""
    return next((reason for pattern, reason in KNOWN_PROBLEMS if pattern.search(problem)), None)
