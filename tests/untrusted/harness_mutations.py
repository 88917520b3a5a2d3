"""Mutations of valid answers: a scripted table, and hypothesis strategies for random ones.

A path addresses a node of an answer: into the JSON body, or, for a stream, ``(event index, ...)``
into that event's data. The operations are the ones the issue names: replace a value with one of
another type, delete a key (or list element), put ``null`` in, empty a list, duplicate an event,
cut the bytes at some offset — plus JSON tokens no encoder writes (``NaN``, ``1e999``, numbers of
hundreds or thousands of digits, lone surrogate escapes), and values a careless reader would take
(a count of ``["3"]``, a model of ``true``, text given as an empty list of parts).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import msgspec
from harness_oracle import FAILS_200, FAILS_CUT, FUZZ_KEY, Case, answer_script
from harness_readers import Allowed, Invalid, allowed, reads
from harness_templates import NOT_JSON, Answer, Raw, Template, render
from hypothesis import strategies as st

__all__ = ["Mutant", "mutants", "scripted_cases", "mutated_case"]

Path = tuple[str | int, ...]


# -- addressing --------------------------------------------------------------------------------------------

def _walk(value: Any, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key), item
            yield from _walk(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index), item
            yield from _walk(item, (*prefix, index))


def paths(template: Template, answer: Answer) -> list[tuple[Path, Any]]:
    """Every node below the root, with its value."""
    if template.framing == "json":
        return list(_walk(answer))
    out: list[tuple[Path, Any]] = []
    for index, event in enumerate(answer):
        out.append(((index,), event.data))
        if not (event.raw or event.comment):
            out += list(_walk(event.data, (index,)))
    return out


def _parent(root: Any, path: Path) -> Any:
    node = root
    for step in path[:-1]:
        node = node[step]
    return node


def set_at(template: Template, answer: Answer, path: Path, value: Any) -> Answer:
    answer = copy.deepcopy(answer)
    if template.framing == "json":
        _parent(answer, path)[path[-1]] = value
        return answer
    index, rest = path[0], path[1:]
    event = answer[index]
    if not rest:
        answer[index] = replace(event, data=value, raw=False, comment=False)
    else:
        _parent(event.data, rest)[rest[-1]] = value
    return answer


def delete_at(template: Template, answer: Answer, path: Path) -> Answer:
    answer = copy.deepcopy(answer)
    if template.framing == "json":
        del _parent(answer, path)[path[-1]]
        return answer
    index, rest = path[0], path[1:]
    if not rest:
        del answer[index]
    else:
        del _parent(answer[index].data, rest)[rest[-1]]
    return answer


def duplicate_event(answer: Answer, index: int) -> Answer:
    answer = list(answer)
    answer.insert(index + 1, copy.deepcopy(answer[index]))
    return answer


# -- values of another type ----------------------------------------------------------------------------

def kind(value: Any) -> str:
    if isinstance(value, Raw):
        return "raw" if value.value is NOT_JSON else kind(value.value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object", Raw: "raw"}.get(type(value), "other")


#: The scripted stand-in of another type for each JSON type; strings in them are the configured key, which
#: no error message may quote back.
_OTHER = {"string": 7, "number": FUZZ_KEY, "bool": "true", "null": {"q": FUZZ_KEY}, "array": {"q": 1},
          "object": [FUZZ_KEY]}


# -- the scripted table --------------------------------------------------------------------------------------

@dataclass
class Mutant:
    """A mutated answer (``answer``), how it was made, and where to cut its bytes (``None``: whole)."""

    id: str
    answer: Answer
    cut: int | None = None
    reset: bool = False  # the cut is a connection reset, not a clean end of the body


def _representatives(template: Template) -> list[int]:
    """One event of each kind (name, ``type``, keys, text or not): mutating every delta adds nothing."""
    if template.framing == "json":
        return []
    seen: dict[Any, int] = {}
    for index, event in enumerate(template.answer):
        data = event.data
        shape = (event.name, event.raw, event.comment, data.get("type") if isinstance(data, dict) else None,
                 tuple(sorted(data)) if isinstance(data, dict) else None, bool(data.get("done")) if
                 isinstance(data, dict) else None, _has_text(template, index))
        seen.setdefault(shape, index)
    return sorted(seen.values())


def _has_text(template: Template, index: int) -> bool:
    try:
        return reads(template, template.answer[index:index + 1]) != ""
    except Invalid:
        return False


def _text_paths(template: Template) -> list[Path]:
    """Paths of the string leaves whose value reaches the caller (found by changing each)."""
    base = reads(template, template.answer)
    found = []
    for path, value in paths(template, template.answer):
        if not (isinstance(value, str) and value):
            continue
        try:
            changed = reads(template, set_at(template, template.answer, path, "≠")) != base
        except Invalid:
            changed = False
        if changed:
            found.append(path)
    return found


def _ident(path: Path) -> str:
    return ".".join(str(step) for step in path) or "root"


_NUMBERS = {"bignum": Raw("1" + "0" * 5000, 10 ** 5000), "int400": Raw("1" + "0" * 400, 10 ** 400),
            "1e999": Raw.of("1e999"), "NaN": Raw.of("NaN"), "neg": -1, "frac": 2.5, "2e64": 2 ** 64, "strlist": ["3"]}
_TEXTS = {"surrogate": Raw.of('"H\\ud800i"'), "bad-escape": Raw.of('"\\x41"'), "nul": "a\x00b", "parts": []}


def _count_like(path: Path) -> bool:
    """A token count (the fields that feed stats and cost)."""
    last = str(path[-1])
    return "token" in last or "count" in last or last in ("prompt", "generated")


def _node_mutants(template: Template, path: Path, value: Any, *, full: bool) -> Iterator[Mutant]:
    answer = template.answer
    tag = _ident(path)
    yield Mutant(f"{tag}:type", set_at(template, answer, path, _OTHER[kind(value)]))
    if value is not None:
        yield Mutant(f"{tag}:null", set_at(template, answer, path, None))
    if len(path) > 1 or template.framing == "json":
        yield Mutant(f"{tag}:del", delete_at(template, answer, path))
    if isinstance(value, list) and value:
        yield Mutant(f"{tag}:empty", set_at(template, answer, path, []))
    if path[-1] == "model" and isinstance(value, str):  # the model feeds stats and the price lookup
        yield Mutant(f"{tag}:true", set_at(template, answer, path, True))
    if kind(value) == "number" and not str(path[-1]).isdigit() and (full or _count_like(path)):
        for name, odd in _NUMBERS.items():
            yield Mutant(f"{tag}:{name}", set_at(template, answer, path, odd))


def _stream_mutants(template: Template) -> Iterator[Mutant]:
    events = template.answer
    pieces = render(template, events)
    ends = [sum(len(p) for p in pieces[:i + 1]) for i in range(len(pieces))]
    for index in _representatives(template):
        yield Mutant(f"{index}:dup", duplicate_event(events, index))
        yield Mutant(f"{index}:not-json", set_at(template, events, (index,), Raw.of("{not json")))
    last = len(events) - 1
    yield Mutant("only-last-event", [events[last]])
    yield Mutant("no-events", [])
    yield Mutant("last-event-first", [events[last], *events[:last]])
    for index in (0, len(events) // 2, last - 1, last):
        yield Mutant(f"cut-after-{index}", events, cut=ends[index])
    body = b"".join(pieces)
    for position in sorted({len(body) // 3, len(body) // 2, len(body) - 3, body.find("✓".encode()) + 1}):
        yield Mutant(f"cut-at-{position}", events, cut=position)
        yield Mutant(f"reset-at-{position}", events, cut=position, reset=True)


def _first_items_only(template: Template, path: Path) -> bool:
    """Whether ``path`` goes through no list element but the first (the others are alike)."""
    inner = path if template.framing == "json" else path[1:]
    return all(not isinstance(step, int) or step == 0 for step in inner)


def mutants(template: Template, *, full: bool = True) -> list[Mutant]:
    """The scripted table for one template. Not ``full`` (the PR tier): only the first element of each
    list (the others are alike) and the odd numbers only in token counts."""
    out: list[Mutant] = []
    text_paths = _text_paths(template)
    representatives = set(_representatives(template))
    for path, value in paths(template, template.answer):
        if template.framing != "json" and path[0] not in representatives:
            continue
        if not full and not _first_items_only(template, path):
            continue
        out += _node_mutants(template, path, value, full=full)
        if path in text_paths:
            out += [Mutant(f"{_ident(path)}:{name}", set_at(template, template.answer, path, odd))
                    for name, odd in _TEXTS.items()]
    if template.framing == "json":
        out += [Mutant("not-json", Raw.of("<html>oops</html>")), Mutant("empty-object", {}),
                Mutant("array", []), Mutant("null", None), Mutant("deep", Raw.of("[" * 100_000 + "]" * 100_000))]
        body = b"".join(render(template, template.answer))
        out += [Mutant(f"cut-at-{n}", template.answer, cut=n) for n in sorted({1, len(body) // 2, len(body) - 1})]
    else:
        out += list(_stream_mutants(template))
    return out


def _allowed_for(template: Template, mutant: Mutant) -> Allowed:
    return allowed(template, mutant.answer)


def mutated_case(template: Template, mutant: Mutant, *, spelling: str | None = None) -> Case:
    """The oracle's case for a mutant: what the server sends and what may come of it."""
    pieces = render(template, mutant.answer)
    fails = FAILS_200
    if mutant.cut is not None:
        body = b"".join(pieces)[:mutant.cut]
        pieces = [body[:mutant.cut]] if template.framing == "json" else _split(pieces, mutant.cut)
        fails = FAILS_CUT
    handler = answer_script(template, pieces, spelling=spelling, cut=mutant.reset)
    if mutant.reset:
        fails = FAILS_CUT
    return Case(f"{template.id}:{mutant.id}", template, handler, _allowed_for(template, mutant), fails,
                note=mutant.id, racy=mutant.reset or _late_bad_line(template, pieces))


def _late_bad_line(template: Template, pieces: list[bytes]) -> bool:
    """An NDJSON stream with a line after the first that is not JSON. The library's framer decodes every line
    of one read before the decoder sees any (harness_findings.NDJSON_BATCH), so whether the lines before it
    reach the caller depends on how the bytes were split into reads: timing, not the answer."""
    if template.framing != "ndjson":
        return False
    for line in b"".join(pieces).splitlines()[1:]:
        try:
            if line.strip():
                msgspec.json.decode(line)
        except (msgspec.DecodeError, RecursionError):
            return True
    return False


def _split(pieces: list[bytes], cut: int) -> list[bytes]:
    """The pieces up to byte ``cut`` of their concatenation, keeping the event boundaries as chunks."""
    out, used = [], 0
    for piece in pieces:
        if used + len(piece) >= cut:
            out.append(piece[:cut - used])
            break
        out.append(piece)
        used += len(piece)
    return [p for p in out if p]


def scripted_cases(templates: list[Template], *, full: bool = True) -> list[Case]:
    return [mutated_case(template, mutant) for template in templates for mutant in mutants(template, full=full)]


# -- hypothesis --------------------------------------------------------------------------------------------

_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=8) | st.just(FUZZ_KEY)
            | st.sampled_from([Raw.of("NaN"), Raw.of("Infinity"), Raw.of("-1e999"), Raw.of('"\\udc00"'),
                               Raw.of("1" + "0" * 400)]))


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Named functions, not lambdas: hypothesis reads a lambda's source (with `ast`) to describe it.
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet="qz", max_size=3), inner, max_size=3)


#: Random JSON; object keys are drawn from "q" and "z" only, so no made-up value ever looks like a real field.
JSON_VALUES = st.recursive(_SCALARS, _containers, max_leaves=6)


def _other_kind(old: Any, new: Any) -> bool:
    return kind(new) != kind(old)


@st.composite
def mutant_strategy(draw: st.DrawFn, template: Template) -> Mutant:
    """One to three random mutations of ``template``'s answer, then maybe a cut."""
    answer = template.answer
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        nodes = paths(template, answer)
        ops = ["replace", "null", "delete"] + (["duplicate"] if template.framing != "json" and answer else [])
        op = draw(st.sampled_from(ops))
        if op == "duplicate":
            index = draw(st.integers(0, len(answer) - 1))
            answer = duplicate_event(answer, index)
            steps.append(f"dup{index}")
            continue
        if not nodes:
            break
        path, value = draw(st.sampled_from(nodes))
        if op == "replace":
            new = draw(JSON_VALUES.filter(functools.partial(_other_kind, value)))
            answer = set_at(template, answer, path, new)
        elif op == "null":
            answer = set_at(template, answer, path, None)
        elif template.framing == "json" or len(path) > 1:
            answer = delete_at(template, answer, path)
        steps.append(f"{op}@{_ident(path)}")
    cut = None
    if draw(st.integers(0, 3)) == 0:
        size = len(b"".join(render(template, answer)))
        cut = draw(st.integers(0, max(0, size - 1)))
        steps.append(f"cut{cut}")
    return Mutant("+".join(steps), answer, cut=cut, reset=cut is not None and draw(st.booleans()))
