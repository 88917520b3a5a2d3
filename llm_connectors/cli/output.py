"""What the command line prints: tables that fit the terminal, colour, a progress bar, JSON.

Colour and progress appear only when the stream is a terminal (and ``NO_COLOR`` is unset), so a
pipe or a file gets plain text; tables fit the terminal's width, or 80 columns when piped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
from collections.abc import Sequence
from typing import IO, Any

__all__ = ["Progress", "TABLE_WIDTH", "dump", "line_width", "paint", "table", "write_wrapped"]

TABLE_WIDTH = 80  # the width tables fit when stdout is not a terminal

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _visible_len(text: str) -> int:
    # Colour codes take no room on a terminal: measure without them, or columns drift.
    return len(_ANSI.sub("", text))


def _colour_on(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, code: str, stream: IO[str]) -> str:
    """``text`` in an ANSI style (``code``: "1" bold, "2" dim, "31" red...) when ``stream`` shows colour."""
    return f"\033[{code}m{text}\033[0m" if _colour_on(stream) else text


def line_width(out: IO[str], *, wide: bool = False) -> int | None:
    """How wide a table may be: the terminal's width, 80 when piped, unlimited with ``--wide``."""
    if wide:
        return None
    isatty = getattr(out, "isatty", None)
    if isatty and isatty():
        return shutil.get_terminal_size(fallback=(TABLE_WIDTH, 24)).columns
    return TABLE_WIDTH


def table(rows: Sequence[Sequence[str]], header: Sequence[str], out: IO[str], *,
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

    out.write(paint(line(header), "1", out) + "\n")
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


def write_wrapped(text: str, out: IO[str], width: int | None) -> None:
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


def dump(value: Any, out: IO[str], *, compact: bool = False) -> None:
    """``value`` as JSON on ``out`` (``compact``: on one line)."""
    # Vectors are long: one line for them, indented documents for everything a person reads.
    out.write(json.dumps(value, indent=None if compact else 2, ensure_ascii=False, default=str) + "\n")
