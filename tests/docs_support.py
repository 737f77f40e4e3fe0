"""Parsing helpers of tests/test_docs.py: Markdown pages (sections, bullets, tables, code
spans, headings), documented signatures, drawn exception trees, and the thread names the
source gives (no network, no threads)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)
MISSING = object()


def page(name: str) -> str:
    return (DOCS / name).read_text("utf-8")


def prose(name: str) -> str:
    """A docs page with every run of whitespace as one space (for sentences across lines)."""
    return " ".join(page(name).split())


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    end = re.compile(rf"^{level} ", re.M).search(text, start)
    return text[start : end.start() if end else len(text)]


def bullets(text: str) -> list[str]:
    """The bullet items of ``text`` (``- ...`` with their indented continuation lines)."""
    items: list[str] = []
    open_item = False
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(line[2:])
            open_item = True
        elif open_item and line.startswith("  ") and line.strip():
            items[-1] += " " + line.strip()
        else:
            open_item = False
    return items


def table(text: str, first_header: str) -> list[list[str]]:
    """The rows (cells) of the Markdown table whose first header cell is ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def doc_params(signature: str) -> list[tuple[str, str, Any]]:
    """``name(a, b=1, *, c=None, **kw)`` as ``[(name, kind, default)]`` (defaults as literals)."""
    rest = signature.partition("(")[2]
    tree = ast.parse(f"def f({rest.split(') ->')[0].rstrip().removesuffix(')')}): pass")
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    a = fn.args
    out: list[tuple[str, str, Any]] = []
    positional = a.posonlyargs + a.args
    defaults = [MISSING] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for arg, default in zip(positional, defaults, strict=True):
        kind = "POSITIONAL_ONLY" if arg in a.posonlyargs else "POSITIONAL_OR_KEYWORD"
        out.append((arg.arg, kind, default))
    if a.vararg:
        out.append((a.vararg.arg, "VAR_POSITIONAL", MISSING))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        out.append((arg.arg, "KEYWORD_ONLY", MISSING if default is None else default))
    if a.kwarg:
        out.append((a.kwarg.arg, "VAR_KEYWORD", MISSING))
    return [(n, k, d if d is MISSING else ast.literal_eval(d)) for n, k, d in out]


def code_params(obj: Any) -> list[tuple[str, str, Any]]:
    params = list(inspect.signature(obj).parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    return [
        (p.name, p.kind.name, MISSING if p.default is inspect.Parameter.empty else p.default)
        for p in params
    ]


def assert_same_signature(where: str, documented: str, obj: Any) -> None:
    doc, code = doc_params(documented), code_params(obj)
    assert [(n, k) for n, k, _ in doc] == [(n, k) for n, k, _ in code], where
    for (name, _, d), (_, _, c) in zip(doc, code, strict=True):
        same = d is c or (d == c and (isinstance(d, type(c)) or isinstance(c, type(d))))
        assert same, f"{where}: default of {name}: docs {d!r}, code {c!r}"


def hierarchy() -> dict[str, tuple[str, ...]]:
    """The exception classes of deriv_sdk under ``DerivError``, as ``{class: bases}``."""
    from deriv_sdk import DerivError

    out: dict[str, tuple[str, ...]] = {"DerivError": ("Exception",)}
    todo: list[type] = [DerivError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("deriv_sdk"):
                out[sub.__name__] = tuple(base.__name__ for base in sub.__bases__)
                todo.append(sub)
    return out


def tree(block: str) -> dict[str, tuple[str, ...]]:
    """An exception tree drawn with ├── / └── as ``{class: bases}`` (the parent's name when
    the line gives no bases)."""
    out: dict[str, tuple[str, ...]] = {}
    parents: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = re.search(r"(\w+)(?:\(([\w, ]+)\))?", line)
        if not match:
            continue
        depth = match.start()
        while parents and parents[-1][0] >= depth:
            parents.pop()
        bases = tuple(b.strip() for b in match[2].split(",")) if match[2] else (parents[-1][1],)
        out[match[1]] = bases
        parents.append((depth, match[1]))
    return out


def tree_block(text: str) -> str:
    return next(code for lang, code in FENCE.findall(text) if code.startswith("DerivError("))


THREAD_NAME = re.compile(r"deriv_sdk-[\w-]+")


def documented_threads() -> set[str]:
    names = set()
    for path in [*DOCS.glob("*.md"), ROOT / "README.md"]:
        names |= {s for s in SPAN.findall(path.read_text("utf-8")) if THREAD_NAME.fullmatch(s)}
    return names


def pattern(name: str) -> re.Pattern[str]:
    """A documented thread name as a pattern (``-N``: a number)."""
    escaped = re.escape(name)
    return re.compile(escaped[:-1] + r"\d+" if name.endswith("-N") else escaped)


def source_threads() -> set[str]:
    """Every thread name the source can give: string literals (not docstrings, not parameter
    defaults that every caller overrides) starting with ``deriv_sdk-``; a formatted part or a
    prefix ending in ``-`` becomes ``N``."""
    names = set()
    for path in sorted((ROOT / "deriv_sdk").rglob("*.py")):
        module = ast.parse(path.read_text("utf-8"))
        skip = set()
        for node in ast.walk(module):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                skip.add(id(node.value))  # a docstring
            if isinstance(node, ast.arguments):
                skip |= {id(d) for d in node.defaults + node.kw_defaults if d is not None}
        for node in ast.walk(module):
            if id(node) in skip:
                continue
            if isinstance(node, ast.JoinedStr) and isinstance(node.values[0], ast.Constant):
                head = str(node.values[0].value)
                if head.startswith("deriv_sdk-"):
                    names.add(head + "N")
                    skip |= {id(v) for v in node.values}
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and THREAD_NAME.fullmatch(node.value)
            ):
                names.add(node.value + "N" if node.value.endswith("-") else node.value)
    return names


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text("utf-8"))
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def abort_reasons() -> set[str]:
    """The reasons the source gives ``Link.abort(reason)``: ``x.abort("...")`` calls with a
    string, or an f-string's leading text."""
    reasons = set()
    for path in sorted((ROOT / "deriv_sdk").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "abort"
                and node.args
            ):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                reasons.add(str(arg.values[0].value))
            elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                reasons.add(arg.value)
    return reasons
