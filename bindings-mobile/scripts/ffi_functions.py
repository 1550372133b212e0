#!/usr/bin/env python3
"""Prints the names of the functions a uniffi C header (FundCoreFFI.h) declares, one per line.

uniffi writes each declaration inside its own include guard (`#ifndef UNIFFI_FFIDEF_<NAME>`),
typedefs (structs, callback types) included. A declaration is a statement, outside any struct
body, that does not start with `typedef` and names a function: `<return type> <name>(...)`.
Exits 1 when the count disagrees with the guards that hold no typedef, so that a declaration
the parser misreads cannot pass unnoticed.

    python3 ffi_functions.py FundCoreFFI.h
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
DIRECTIVE = re.compile(r"^[ \t]*#[^\n]*(?:\\\n[^\n]*)*", re.M)
FUNCTION = re.compile(r"^(?:extern\s+)?[A-Za-z_][\w\s\*]*?\b([A-Za-z_]\w*)\s*\(", re.S)
GUARD = re.compile(r"^#ifndef (UNIFFI_FFIDEF_\w+)\n#define \1\n(.*?)^#endif", re.S | re.M)


def functions(header: str) -> list[str]:
    code = DIRECTIVE.sub("", COMMENT.sub("", header))
    names: list[str] = []
    depth = 0
    statement = ""
    for char in code:
        # Struct bodies hold fields, not declarations: only statements at depth 0 count.
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == ";" and depth == 0:
            text = statement.strip()
            if text and not text.startswith("typedef"):
                match = FUNCTION.match(text)
                if match:
                    names.append(match.group(1))
            statement = ""
            continue
        if depth == 0 and char != "}":
            statement += char
    return names


def guarded_declarations(header: str) -> int:
    """Guard blocks holding something other than a typedef: one function each."""
    return sum(1 for m in GUARD.finditer(header) if not m.group(2).lstrip().startswith("typedef"))


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    header = Path(sys.argv[1]).read_text(encoding="utf-8")
    names = functions(header)
    if not names:
        print(f"ffi_functions: no function declarations in {sys.argv[1]}", file=sys.stderr)
        return 1
    expected = guarded_declarations(header)
    if len(names) != expected or len(set(names)) != len(names):
        print(
            f"ffi_functions: {len(names)} declarations read ({len(set(names))} distinct) but "
            f"{expected} guarded declarations in {sys.argv[1]}",
            file=sys.stderr,
        )
        return 1
    print("\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
