"""The docstrings of the stubs (`_fundcore.pyi`, what IDEs show on hover) are the built module's
`__doc__`s, which pyo3 makes from the Rust doc comments: they are written once, in Rust, and
`scripts/sync_stub_docs.py` copies them (`make python-stubs`). These tests fail when the two
differ, so a doc comment changed in Rust without the stubs (or the reverse) does not pass."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import fundcore._fundcore as native

BINDING = Path(__file__).resolve().parents[1]
SCRIPT = BINDING / "scripts" / "sync_stub_docs.py"
STUB = BINDING / "python" / "fundcore" / "_fundcore.pyi"


def sync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def stub_docstrings(text: str) -> dict[str, str | None]:
    """Name -> docstring of each module-level class and function of the stub that the module has,
    and of each of their members but the dunders (`Engine.subscribe`, `Fund.id`, ...)."""
    found: dict[str, str | None] = {}
    for node in ast.parse(text).body:
        if not isinstance(node, ast.ClassDef | ast.FunctionDef) or not hasattr(native, node.name):
            continue
        found[node.name] = ast.get_docstring(node)
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef) and not member.name.startswith("__"):
                    found[f"{node.name}.{member.name}"] = ast.get_docstring(member)
    return found


def runtime_docstring(name: str) -> str | None:
    owner, _, member = name.partition(".")
    obj = getattr(native, owner)
    if member:
        obj = vars(obj)[member]  # the descriptor: a property's own __doc__
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else None


def test_every_stub_docstring_is_the_runtime_one():
    """Read independently of the script: `ast` on the stub against `__doc__` of the module."""
    documented = stub_docstrings(STUB.read_text(encoding="utf-8"))
    assert {"Engine", "Engine.subscribe", "Engine.path", "Fund.id", "HistoryPage.next", "format_cop"} <= set(documented)
    differing = {
        name: (doc, runtime_docstring(name)) for name, doc in documented.items() if doc != runtime_docstring(name)
    }
    assert differing == {}


def test_every_public_class_method_and_property_is_documented():
    """Each has a doc comment in Rust (so the stubs have something to show)."""
    missing = [
        name
        for name in stub_docstrings(STUB.read_text(encoding="utf-8"))
        if not any(part.startswith("_") for part in name.split(".")) and runtime_docstring(name) is None
    ]
    assert missing == []


def test_the_script_finds_the_stubs_in_sync():
    result = sync("--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_the_script_reports_and_repairs_drifted_docstrings(tmp_path):
    """A changed, a missing and a stale docstring are each reported by `--check`, and a rewrite
    gives back the stubs as they are in the repository."""
    original = STUB.read_text(encoding="utf-8")
    subscribe_doc = inspect.cleandoc(native.Engine.subscribe.__doc__).split("\n")[0]
    funds_doc = f'    def funds(self) -> list[Fund]:\n        """{native.Engine.funds.__doc__}"""\n'
    fund_doc = '@final\nclass Fund:\n    """An investment fund of the catalogue.\n'
    drifted = (
        original.replace(subscribe_doc, "Subscribes, somehow.", 1)
        .replace(funds_doc, "    def funds(self) -> list[Fund]: ...\n", 1)
        .replace(fund_doc, '@final\nclass Fund:\n    """A fund, as someone once wrote it.\n', 1)
        .replace("    def __len__(self) -> int: ...\n", '    def __len__(self) -> int:\n        """Stale."""\n', 1)
    )
    assert drifted.count("Subscribes, somehow.") == 1 and "A fund, as someone" in drifted
    assert funds_doc not in drifted
    stub = tmp_path / "_fundcore.pyi"
    stub.write_text(drifted, encoding="utf-8")

    check = sync("--check", "--stub", str(stub))
    assert check.returncode == 1
    assert '-        """Subscribes, somehow.' in check.stdout
    assert f'+        """{native.Engine.funds.__doc__}"""' in check.stdout
    assert '-    """A fund, as someone once wrote it.' in check.stdout
    assert "rebuild it and run `make python-stubs`" in check.stderr
    assert stub.read_text(encoding="utf-8") == drifted  # --check changes nothing

    rewrite = sync("--stub", str(stub))
    assert rewrite.returncode == 0, rewrite.stderr
    repaired = stub.read_text(encoding="utf-8")
    # Dunders are left alone (their __doc__ is Python's own), so the stale one stays.
    assert repaired == drifted.replace(
        "Subscribes, somehow.", subscribe_doc, 1
    ).replace("    def funds(self) -> list[Fund]: ...\n", funds_doc, 1).replace(
        '"""A fund, as someone once wrote it.\n', '"""An investment fund of the catalogue.\n', 1
    )
    assert sync("--check", "--stub", str(stub)).returncode == 0


def test_a_rewrite_of_stubs_without_docstrings_gives_the_repository_stubs(tmp_path):
    """Every docstring the script writes comes from the module: with all of them removed from a
    copy, a rewrite gives the repository's stubs back, byte for byte."""
    original = STUB.read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    nodes: list[ast.ClassDef | ast.FunctionDef] = []
    for node in ast.parse(original).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and hasattr(native, node.name):
            nodes.append(node)
            if isinstance(node, ast.ClassDef):
                nodes += [m for m in node.body if isinstance(m, ast.FunctionDef) and not m.name.startswith("__")]
    removed = 0
    for node in sorted(nodes, key=lambda node: node.lineno, reverse=True):
        if ast.get_docstring(node) is None:
            continue
        doc = node.body[0]
        first, end = doc.lineno - 1, doc.end_lineno  # 0-based lines [first, end)
        if isinstance(node, ast.ClassDef):
            if lines[end].strip() == "":
                end += 1  # the blank line after a class docstring
        else:
            assert len(node.body) == 1 and lines[first - 1].endswith(":\n")
            lines[first - 1] = lines[first - 1][:-1] + " ...\n"  # `def f(...) -> T: ...`
        del lines[first:end]
        removed += 1
    assert removed > 50
    bare = "".join(lines)
    ast.parse(bare)
    assert '"""' not in bare.split("class Fund:", 1)[1].split("def _record_from_json", 1)[0]
    stub = tmp_path / "_fundcore.pyi"
    stub.write_text(bare, encoding="utf-8")
    assert sync("--check", "--stub", str(stub)).returncode == 1
    assert sync("--stub", str(stub)).returncode == 0
    assert stub.read_text(encoding="utf-8") == original
