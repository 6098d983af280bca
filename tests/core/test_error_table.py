"""Every row of docs/errors.md names a test that exists and a message the code can produce.

No S3 server: the messages are looked for in the string literals of the packages, read with
:mod:`ast` as templates of literal parts and holes (f-strings, ``str.format`` and ``%`` strings,
``+`` chains). A message is accounted for character by character:

* its placeholders (``<bucket>``, ``<uuid>``, ...) and elisions (``…``) stand for other text;
* literal text is covered by a literal part of the sources (or its clause before a ``:``, as
  code may cut off the fix), whole or cut by an elision;
* text that no literal covers is a value of the example (``'x'``, ``AccessDenied``, a JSON
  parser's message) only where it fills a hole of a template whose literal parts all match
  around it. A hole between two literals that hold more than blanks, in a template with a
  literal of ``_MIN_ANCHOR`` characters, holds anything, unless a literal of the sources lies
  in it: then another template fills it and the hole holds only its end tokens. Any other hole
  holds the one token glued to its literal. A token is never a plain word;
* a run of at most ``_GLUE`` characters besides blanks may stay unaccounted, e.g. the ``/`` of
  ``<bucket>/<uuid>`` or a short word that a template only makes in context.

What this cannot see: a constant that reaches a message through a variable (``"a frozen
copy"``) is a value to it, so a typo there goes unnoticed; a typo in a template's own text does
not (``test_the_matcher_refuses_text_the_code_cannot_make``).

Rows of dtool's own usage errors (marked "dtool:") and rows that state what is absent (starting
with "no") quote no message of ours; their tests must exist all the same.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum, auto
from functools import cache
from pathlib import Path

import pytest

from dtool_s3_core import errors

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "errors.md"
PACKAGES = (
    ROOT / "dtool_s3_core",
    ROOT / "integrations" / "airflow" / "dtool_s3_airflow",
    ROOT / "integrations" / "snakemake" / "snakemake_storage_plugin_dtool",
)
TESTS = ROOT / "tests"

#: Shorter literals cover text only inside a whole template that matches.
_MIN_LITERAL = 4
#: A hole may hold more than one token only if its template has a literal this long.
_MIN_ANCHOR = 8
#: Characters besides blanks that may stay unaccounted between two accounted parts.
_GLUE = 3

_PLACEHOLDER = re.compile(r"<[A-Za-z][\w .-]*>|…|\.\.\.")
_ELISION = re.compile(r"…|\.\.\.")
_BACKTICKED = re.compile(r"`([^`]+)`")
_EXCEPTION_NAME = re.compile(r"`(\w+)`:")
_PRINTF_FIELD = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[sdrf]")
_HOLE = None

Template = tuple[str | None, ...]


class Part(Enum):
    """What a group of a template's pattern matched."""

    LITERAL = auto()
    #: Anything: the hole lies between two literals that hold more than blanks.
    ANY_VALUE = auto()
    #: The hole's last token, glued to the literal after it (``{name!r}, which``).
    LAST_TOKEN = auto()
    #: The hole's first token, glued to the literal before it (``_ENDPOINT_{bucket}``).
    FIRST_TOKEN = auto()
    #: Nothing: only blanks or the ends of the template border the hole.
    NO_VALUE = auto()


@dataclass(frozen=True)
class Row:
    """One row of a matrix in docs/errors.md."""

    number: str
    messages: tuple[str, ...]
    exceptions: tuple[str, ...]
    tests: tuple[str, ...]


def _rows() -> Iterator[Row]:
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not cells[0].isdigit():
            continue
        message_cell, test_cell = cells[3], cells[5]
        quoted = not message_cell.startswith(("dtool", "no "))
        exceptions = tuple(_EXCEPTION_NAME.findall(message_cell)) if quoted else ()
        messages = tuple(
            span
            for span in (_BACKTICKED.findall(message_cell) if quoted else ())
            if span not in exceptions and not _is_dtools(span, message_cell)
        )
        yield Row(cells[0], messages, exceptions, tuple(_BACKTICKED.findall(test_cell)))


def _is_dtools(span: str, cell: str) -> bool:
    """Return whether the cell quotes ``span`` as a dtool command or as dtool's own output."""
    return span.startswith("dtool ") or f"says `{span}`" in cell


ROWS = list(_rows())


# The sources as templates ---------------------------------------------------------------------


def _string_parts(text: str) -> Template:
    """Split a plain string at its ``str.format`` and ``%`` fields."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:  # braces that are no fields: a regex, a JSON example
        parsed = [(text, None, None, None)]
    parts: list[str | None] = []
    for literal, field, _, _ in parsed:
        for index, piece in enumerate(_PRINTF_FIELD.split(literal)):
            if index:
                parts.append(_HOLE)
            parts.append(piece)
        if field is not None:
            parts.append(_HOLE)
    return tuple(parts)


def _parts(node: ast.expr) -> Template:
    """The literals and holes of a string expression; any other expression is one hole."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _string_parts(node.value)
    if isinstance(node, ast.JoinedStr):
        return tuple(
            value.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str)
            else _HOLE
            for value in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _parts(node.left) + _parts(node.right)
    return (_HOLE,)


def _joined(parts: Template) -> Template:
    """Adjacent literals joined, adjacent holes merged, blanks normalised and trimmed."""
    joined: list[str | None] = []
    for part in parts:
        if part == "":
            continue
        if joined and (part is _HOLE) == (joined[-1] is _HOLE):
            if part is not _HOLE:
                joined[-1] = f"{joined[-1]}{part}"
            continue
        joined.append(part)
    cleaned = [part if part is _HOLE else re.sub(r"\s+", " ", part) for part in joined]
    if cleaned and cleaned[0] is not _HOLE:
        cleaned[0] = cleaned[0].lstrip()
    if cleaned and cleaned[-1] is not _HOLE:
        cleaned[-1] = cleaned[-1].rstrip()
    return tuple(part for part in cleaned if part != "")


def _is_string(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_string(node.left) or _is_string(node.right)
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


@cache
def _templates() -> frozenset[Template]:
    templates: set[Template] = set()
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.expr) and _is_string(node):
                    templates.add(_joined(_parts(node)))
    return frozenset(template for template in templates if any(template))


@cache
def _literals() -> frozenset[str]:
    """The literal parts, and their leading clauses (code may cut a message at its fix)."""
    literals = {
        clause.strip()
        for template in _templates()
        for part in template
        if part
        for clause in (part, *re.findall(r"^[^:;]+(?=[:;])", part))
    }
    return frozenset(literal for literal in literals if len(literal) >= _MIN_LITERAL)


def _hole_kind(template: Template, index: int, anchored: bool) -> Part:
    before, after = (
        (template[i] or "").strip() if 0 <= i < len(template) else ""
        for i in (index - 1, index + 1)
    )
    if before and after:
        return Part.ANY_VALUE if anchored else Part.LAST_TOKEN
    if after:
        return Part.LAST_TOKEN
    return Part.FIRST_TOKEN if before else Part.NO_VALUE


@cache
def _patterns() -> tuple[tuple[re.Pattern[str], tuple[Part, ...]], ...]:
    """Each template with holes as a pattern of groups, and what each group stands for."""
    patterns = []
    for template in _templates():
        longest = max((len(part.strip()) for part in template if part), default=0)
        if _HOLE not in template or longest < _MIN_LITERAL:
            continue
        kinds = tuple(
            Part.LITERAL if part else _hole_kind(template, index, longest >= _MIN_ANCHOR)
            for index, part in enumerate(template)
        )
        last = len(template) - 1
        regex = "".join(
            f"({re.escape(part)})" if part else r"(\S*)" if index in {0, last} else "(.*?)"
            for index, part in enumerate(template)
        )
        patterns.append((re.compile(regex), kinds))
    return tuple(patterns)


# The matcher ----------------------------------------------------------------------------------


@dataclass
class Accounting:
    """Which characters of a message are accounted for: covered by a literal, or a value."""

    message: str
    covered: list[bool]
    #: Covered by a literal of at least _MIN_ANCHOR characters: text of the sources, no value.
    anchored: list[bool]
    value: list[bool]

    @classmethod
    def of(cls, message: str) -> Accounting:
        size = len(message)
        accounting = cls(message, [False] * size, [False] * size, [False] * size)
        for match in _PLACEHOLDER.finditer(message):
            accounting.value[match.start() : match.end()] = [True] * len(match[0])
        return accounting

    def cover(self, start: int, end: int) -> None:
        self.covered[start:end] = [True] * (end - start)
        if end - start >= _MIN_ANCHOR:
            self.anchored[start:end] = [True] * (end - start)

    def accept_value(self, start: int, end: int) -> None:
        self.value[start:end] = [True] * (end - start)

    def holds_sources(self, start: int, end: int) -> bool:
        """Return whether a literal of the sources lies in ``message[start:end]``."""
        return any(self.anchored[start:end])

    def unaccounted(self) -> list[str]:
        """Return the runs of unaccounted text that are more than glue."""
        flags = "".join(
            "1" if covered or value else "0"
            for covered, value in zip(self.covered, self.value, strict=True)
        )
        runs = (self.message[run.start() : run.end()] for run in re.finditer("0+", flags))
        return [run for run in runs if len(run.replace(" ", "")) > _GLUE]


def _cover_literals(accounting: Accounting) -> None:
    for literal in _literals():
        start = accounting.message.find(literal)
        while start >= 0:
            accounting.cover(start, start + len(literal))
            start = accounting.message.find(literal, start + 1)
    for elision in _ELISION.finditer(accounting.message):
        _cover_cut_literals(accounting, elision.start(), elision.end())


def _cover_cut_literals(accounting: Accounting, start: int, end: int) -> None:
    """Cover the end of a literal cut off by an elision, and the start of one it resumes."""
    heads, tails = _literal_ends()
    before, after = accounting.message[:start], accounting.message[end:]
    longest = max(map(len, _literals()))
    for size in range(min(longest, len(before)), _MIN_LITERAL - 1, -1):
        if before[-size:] in heads:
            accounting.cover(start - size, start)
            break
    for size in range(min(longest, len(after)), _MIN_LITERAL - 1, -1):
        if after[:size] in tails:
            accounting.cover(end, end + size)
            break


@cache
def _literal_ends() -> tuple[frozenset[str], frozenset[str]]:
    """The beginnings and the ends of the literals that are long enough to cover text."""
    sizes = [(literal, range(_MIN_LITERAL, len(literal) + 1)) for literal in _literals()]
    heads = frozenset(literal[:size] for literal, sizes_ in sizes for size in sizes_)
    tails = frozenset(literal[-size:] for literal, sizes_ in sizes for size in sizes_)
    return heads, tails


def _accept_values(accounting: Accounting) -> None:
    """Cover the literals of every template that matches, then accept what fills its holes."""
    matches = [
        (match, kinds)
        for pattern, kinds in _patterns()
        for match in pattern.finditer(accounting.message)
    ]
    for match, kinds in matches:
        for group, kind in enumerate(kinds, start=1):
            if kind is Part.LITERAL:
                accounting.cover(*match.span(group))
    for match, kinds in matches:
        for group, kind in enumerate(kinds, start=1):
            start, end = match.span(group)
            if kind is Part.ANY_VALUE and not accounting.holds_sources(start, end):
                accounting.accept_value(start, end)
            elif kind is not Part.LITERAL:
                _accept_tokens(accounting, start, end, kind)


def _accept_tokens(accounting: Accounting, start: int, end: int, kind: Part) -> None:
    """Accept the tokens of a hole that are glued to a literal, unless they are plain words.

    A hole that holds a literal of the sources is filled by another template (``damaged``
    holds a ``problem``): that template accounts for the inside, and only the hole's ends are
    its own values (``{how}{cause}`` makes ``3 times (ConnectionClosedError``).
    """
    tokens = list(re.finditer(r"\S+", accounting.message[start:end]))
    glued = {
        Part.ANY_VALUE: tokens[:1] + tokens[-1:],
        Part.FIRST_TOKEN: tokens[:1],
        Part.LAST_TOKEN: tokens[-1:],
    }.get(kind, [])
    for token in glued:
        if re.search(r"[^A-Za-z]", token[0]):
            accounting.accept_value(start + token.start(), start + token.end())


def unaccounted(message: str) -> list[str]:
    """Return the parts of ``message`` that the sources cannot produce (empty if it matches)."""
    accounting = Accounting.of(" ".join(message.split()))
    _cover_literals(accounting)
    _accept_values(accounting)
    return accounting.unaccounted()


# The tests named by the rows ------------------------------------------------------------------


@cache
def _test_functions() -> dict[str, set[Path]]:
    """Each test function name of the tests tree and the files that define it."""
    found: dict[str, set[Path]] = {}
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.setdefault(node.name, set()).add(path)
    return found


@cache
def _string_constants(path: Path) -> frozenset[str]:
    return frozenset(
        node.value
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _test_is_missing(reference: str) -> str | None:
    """Return why the test a row names cannot be found, None if it is there."""
    if reference.endswith(".py"):
        return None if (ROOT / reference).is_file() else f"no file {reference}"
    name, _, param = reference.partition("[")
    paths = _test_functions().get(name)
    if not paths:
        return f"no test function {name}"
    param = param.removesuffix("]")
    if param and not any(param in _string_constants(path) for path in paths):
        return f"{name} has no parameter id {param!r}"
    return None


# The tests ------------------------------------------------------------------------------------


def test_the_table_was_read() -> None:
    assert [int(row.number) for row in ROWS] == list(range(1, len(ROWS) + 1))
    assert len(ROWS) >= 70
    assert sum(len(row.messages) for row in ROWS) >= 70


@pytest.mark.parametrize("row", ROWS, ids=[row.number for row in ROWS])
def test_every_row_names_a_test_that_exists(row: Row) -> None:
    assert row.tests, f"row {row.number} names no test"
    missing = [why for why in map(_test_is_missing, row.tests) if why]
    assert not missing, f"row {row.number}: {missing}"


@pytest.mark.parametrize("row", ROWS, ids=[row.number for row in ROWS])
def test_every_message_is_produced_by_the_code(row: Row) -> None:
    for name in row.exceptions:
        assert issubclass(getattr(errors, name), errors.DtoolS3Error), name
    for message in row.messages:
        assert not unaccounted(message), f"row {row.number}: {message!r}"


@pytest.mark.parametrize(
    "message",
    [
        "Error: the dataset is on fire: call the fire brigade",
        "Error: bucket 'x' does not exist at <endpoint>: create it or verify the bucket name and "
        "DTOOL_S3_ENDPOINT_x",
        "Error: item relpath '/etc/passwd' is absolute: give an absolute path",
        "Error: access denied to s3://<bucket> (AccessDenied): check the bucket policy and "
        "DTOOL_S3_ACCESS_KEY_ID_<bucket>",
        "Error: cannot reach <endpoint> for bucket '<bucket>': check the network",
    ],
)
def test_the_matcher_refuses_text_the_code_cannot_make(message: str) -> None:
    assert unaccounted(message)
