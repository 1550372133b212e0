#!/usr/bin/env python3
"""Writes the docstrings of the binding's stubs from the built module.

The `///` doc comments of the Rust sources (`bindings-python/src/`) are the only place the
texts of the native module are written: pyo3 turns them into the `__doc__` of each class,
method, property and function of `fundcore._fundcore`. IDEs read the stubs
(`python/fundcore/_fundcore.pyi`) instead, so this script copies every `__doc__` of the
installed module into the stubs, in place, leaving everything else of the file as it is:

    .venv/bin/python bindings-python/scripts/sync_stub_docs.py            # rewrite the stubs
    .venv/bin/python bindings-python/scripts/sync_stub_docs.py --check    # exit 1 if they differ

`make python-stubs` rebuilds the module and runs the first; the test suite runs the second
(tests/test_stub_docs.py), so the stubs cannot drift from the Rust sources.

Covered: the module's classes and functions, and the methods and properties of each class. Not
covered: dunder methods (`__eq__`, `__len__`, ...: their `__doc__` is Python's own), the
module docstring and the constants (plain values without a `__doc__`), whose texts live in the
stubs alone. A public class, function, method or property without a `__doc__` is an error: the
Rust item needs a doc comment.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

DEFAULT_STUB = Path(__file__).resolve().parents[1] / "python" / "fundcore" / "_fundcore.pyi"
DEFAULT_MODULE = "fundcore._fundcore"
INDENT = "    "


@dataclass
class Edit:
    """Replace the bytes [start, end) of the stub with `text`."""

    start: int
    end: int
    text: str


def is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def runtime_doc(obj: object) -> str | None:
    """The cleaned `__doc__` of `obj`, or None when it has none."""
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    return inspect.cleandoc(doc)


def docstring_literal(doc: str, indent: str) -> str:
    """`doc` as a triple-quoted literal whose continuation lines start with `indent`."""
    if '"""' in doc:
        raise ValueError(f'a docstring with """ cannot be written: {doc[:60]!r}')
    prefix = "r" if "\\" in doc else ""
    first, *rest = doc.split("\n")
    if not rest and not doc.endswith('"'):
        return f'{prefix}"""{doc}"""'
    # Blank lines stay empty; the closing quotes go on a line of their own.
    continuation = "".join(f"\n{indent}{line}" if line else "\n" for line in rest)
    return f'{prefix}"""{first}{continuation}\n{indent}"""'


class Stub:
    """The stub's text with offsets in bytes, as `ast` reports columns."""

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8")
        self.tree = ast.parse(text)
        self.line_starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))

    def offset(self, line: int, column: int) -> int:
        return self.line_starts[line - 1] + column

    def start(self, node: ast.stmt) -> int:
        return self.offset(node.lineno, node.col_offset)

    def end(self, node: ast.stmt) -> int:
        assert node.end_lineno is not None and node.end_col_offset is not None
        return self.offset(node.end_lineno, node.end_col_offset)


def docstring_node(body: list[ast.stmt]) -> ast.Expr | None:
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first
    return None


def function_edit(stub: Stub, node: ast.FunctionDef, doc: str | None, where: str) -> Edit:
    """The function's whole body becomes its docstring, or `...` when it has none."""
    for statement in node.body:
        is_ellipsis = isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        if not is_ellipsis:
            raise ValueError(f"{where}: a stub body holds only a docstring or `...`")
    start = stub.start(node.body[0])
    while stub.data[start - 1 : start] in (b" ", b"\t", b"\n", b"\r"):
        start -= 1
    if stub.data[start - 1 : start] != b":":
        raise ValueError(f"{where}: no `:` right before the body (a comment in between?)")
    if doc is None:
        text = " ..."
    else:
        indent = " " * node.col_offset + INDENT
        text = "\n" + indent + docstring_literal(doc, indent)
    return Edit(start, stub.end(node.body[-1]), text)


def class_edit(stub: Stub, node: ast.ClassDef, doc: str | None) -> Edit | None:
    """The class's docstring replaced, inserted before its first member, or removed."""
    indent = " " * node.col_offset + INDENT
    current = docstring_node(node.body)
    if current is not None:
        if doc is None:  # the whole line goes
            start = stub.offset(current.lineno, 0)
            assert current.end_lineno is not None
            return Edit(start, stub.line_starts[current.end_lineno], "")
        return Edit(stub.start(current), stub.end(current), docstring_literal(doc, indent))
    if doc is None:
        return None
    first = node.body[0]
    decorators = getattr(first, "decorator_list", [])
    line = min([first.lineno, *(decorator.lineno for decorator in decorators)])
    start = stub.offset(line, 0)
    return Edit(start, start, indent + docstring_literal(doc, indent) + "\n\n")


def edits_for(stub: Stub, module: ModuleType) -> tuple[list[Edit], list[str]]:
    """The edits that give the stub the module's docstrings, and the public items that have
    no `__doc__` at run time."""
    edits: list[Edit] = []
    undocumented: list[str] = []

    def wanted(obj: object, where: str, public: bool) -> str | None:
        doc = runtime_doc(obj)
        if doc is None and public:
            undocumented.append(where)
        return doc

    for node in stub.tree.body:
        if isinstance(node, ast.FunctionDef) and hasattr(module, node.name):
            where = node.name
            doc = wanted(getattr(module, node.name), where, not node.name.startswith("_"))
            edits.append(function_edit(stub, node, doc, where))
        elif isinstance(node, ast.ClassDef) and hasattr(module, node.name):
            cls = getattr(module, node.name)
            public = not node.name.startswith("_")
            class_change = class_edit(stub, node, wanted(cls, node.name, public))
            if class_change is not None:
                edits.append(class_change)
            for member in node.body:
                if not isinstance(member, ast.FunctionDef) or is_dunder(member.name):
                    continue
                where = f"{node.name}.{member.name}"
                if member.name not in vars(cls):
                    raise ValueError(f"{where} is in the stubs, not in the module (run stubtest)")
                doc = wanted(vars(cls)[member.name], where, public and not member.name.startswith("_"))
                edits.append(function_edit(stub, member, doc, where))
    return edits, undocumented


def synced(text: str, module: ModuleType) -> tuple[str, list[str]]:
    """The stub `text` with the module's docstrings, and the undocumented public items."""
    stub = Stub(text)
    edits, undocumented = edits_for(stub, module)
    data = stub.data
    for edit in sorted(edits, key=lambda edit: edit.start, reverse=True):
        data = data[: edit.start] + edit.text.encode("utf-8") + data[edit.end :]
    return data.decode("utf-8"), undocumented


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the stubs differ")
    parser.add_argument("--stub", type=Path, default=DEFAULT_STUB, help="the .pyi file (default: the binding's)")
    parser.add_argument("--module", default=DEFAULT_MODULE, help="the built module to read (default: %(default)s)")
    args = parser.parse_args(argv)

    module = importlib.import_module(args.module)
    text = args.stub.read_text(encoding="utf-8")
    new_text, undocumented = synced(text, module)
    for where in undocumented:
        print(f"{args.stub}: {where} has no doc comment in the Rust sources", file=sys.stderr)
    if args.check:
        if new_text != text:
            diff = difflib.unified_diff(
                text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                f"{args.stub} (as it is)",
                f"{args.stub} (from {module.__file__})",
            )
            sys.stdout.writelines(diff)
            print(
                f"{args.stub}: docstrings differ from the built module's; rebuild it and run "
                "`make python-stubs` (the Rust doc comments are the source)",
                file=sys.stderr,
            )
            return 1
    elif new_text != text:
        args.stub.write_text(new_text, encoding="utf-8")
        print(f"{args.stub}: docstrings written from {module.__file__}")
    return 1 if undocumented else 0


if __name__ == "__main__":
    sys.exit(main())
