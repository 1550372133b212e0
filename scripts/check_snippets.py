#!/usr/bin/env python3
"""Checks that what the READMEs and docs/ show is what the code does.

Three checks, run by `make check-snippets` (the first step of `make test`):

1. Snippets. In every README.md and docs/*.md, each fenced code block of a language that runs
   (rust, python, kotlin, java, swift, sh, bash, shell, console, and unlabelled blocks that look
   like commands) is preceded, on the previous non-empty line, by one marker:

   - ``<!-- snippet: <repo-relative file> -->``: the block's lines (stripped, blank lines
     ignored) appear contiguous and in order in that file, and `make test` runs that file;
   - ``<!-- run-by: <repo-relative test file> -->``: that test file exists, mentions the
     page's file name, and `make test` runs it;
   - ``<!-- not-run: <reason> -->``: output, a diagram, or a command a test must not run.

2. Make targets and links. Every `make <target>` in a code block or an inline code span is a
   target that `make help` lists; every relative link points to a file of the repository and,
   with `#anchor`, to one of its headings.

3. Facts. The tables and examples of docs/ marked ``<!-- checked: <kind> -->`` match the code:
   limits and defaults, the fund catalogue, error codes with their HTTP statuses (the core's) and
   Python exception classes, message texts, validation fields and record fields.

Python 3.11 standard library only. Exit status 0 when everything holds, 1 with a list of the
offending places otherwise.

    python3 scripts/check_snippets.py [--root DIR]
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable

#: Folders that hold built or installed files, not the project's pages (hidden folders too).
SKIPPED_DIRS = {"target", "build", "node_modules", "generated", "__pycache__"}

#: Fence languages whose blocks run, and must therefore carry a marker.
RUNNABLE = {
    "rust", "rs", "python", "py", "python3", "kotlin", "kt", "java", "swift",
    "sh", "bash", "shell", "console", "zsh",
}

#: A line of an unlabelled block that reads as a shell command.
COMMAND_LINE = re.compile(
    r"^(\$\s+)?([A-Z_][A-Z0-9_]*=\S*\s+)*"
    r"(make|cargo|rustup|python3?|pip3?|pytest|curl|export|cd|git|bash|sh|sudo|apt(-get)?|npm|npx"
    r"|java|javac|kotlinc|uvicorn|swift|xcodebuild|\.venv/bin/\S+|\./\S+|scripts/\S+)(\s|$)"
)

MARKER = re.compile(r"^<!--\s*(snippet|run-by|not-run)\s*:\s*(.*?)\s*-->$")
CHECKED = re.compile(r"^<!--\s*checked\s*:\s*(.*?)\s*-->$")
MAKE_CALL = re.compile(r"(?:^|[;&|(]\s*|\$\s+)make\s+((?:[^\s;&|)]+\s*)+)")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


@dataclass
class Block:
    """A fenced code block of a Markdown page."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    lines: list[str]
    marker: tuple[str, str] | None
    checked: str | None


@dataclass
class Page:
    path: Path
    rel: str
    blocks: list[Block] = field(default_factory=list)
    prose: list[tuple[int, str]] = field(default_factory=list)  # (line number, text) outside fences
    lines: list[str] = field(default_factory=list)


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, text: str) -> None:
        self.items.append(f"{where}: {text}")


# --------------------------------------------------------------------------- reading pages


def find_pages(root: Path) -> list[Path]:
    pages: list[Path] = []
    for path in sorted(root.rglob("*.md")):
        rel = path.relative_to(root)
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        if path.name == "README.md" or (rel.parts[0] == "docs" and len(rel.parts) == 2):
            pages.append(path)
    return pages


def previous_non_empty(lines: list[str], index: int) -> str | None:
    for i in range(index - 1, -1, -1):
        if lines[i].strip():
            return lines[i].strip()
    return None


def parse_page(root: Path, path: Path) -> Page:
    lines = path.read_text(encoding="utf-8").splitlines()
    page = Page(path=path, rel=path.relative_to(root).as_posix(), lines=lines)
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            page.prose.append((i + 1, lines[i]))
            i += 1
            continue
        indent, fence, info = len(opening.group(1)), opening.group(2), opening.group(3).strip()
        lang_match = re.match(r"[A-Za-z0-9_+-]+", info)
        lang = lang_match.group(0).lower() if lang_match else ""
        before = previous_non_empty(lines, i)
        marker = MARKER.match(before) if before else None
        checked = CHECKED.match(before) if before else None
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j].lstrip())
            j += 1
        page.blocks.append(
            Block(
                page=path,
                line=i + 1,
                lang=lang,
                lines=body,
                marker=(marker.group(1), marker.group(2)) if marker else None,
                checked=checked.group(1) if checked else None,
            )
        )
        i = j + 1
    return page


def needs_marker(block: Block) -> bool:
    if block.lang in RUNNABLE:
        return True
    if block.lang:
        return False
    return any(COMMAND_LINE.match(line.strip()) for line in block.lines)


def significant(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip()]


# --------------------------------------------------------------------------- make


class Make:
    """What `make help` lists and what `make test` runs (a dry run: nothing is executed)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._help: set[str] | None = None
        self._test: str | None = None
        self.errors: list[str] = []

    def _run(self, *args: str) -> str | None:
        # A recipe line that calls $(MAKE) runs even in a dry run: with a database URL given,
        # `make test` calls it directly instead of through scripts/with-postgres.sh, which
        # would start a PostgreSQL server just to print commands.
        # The flags of a make that runs this script (jobserver, -k, ...) are not ours to pass on.
        env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
        env["FUNDCORE_TEST_DATABASE_URL"] = "postgresql://dry-run.invalid/fundcore"
        try:
            done = subprocess.run(
                ["make", "--no-print-directory", "-C", str(self.root), *args],
                capture_output=True, text=True, timeout=60, env=env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.errors.append(f"make {' '.join(args)}: {exc}")
            return None
        if done.returncode != 0:
            self.errors.append(f"make {' '.join(args)} failed: {done.stderr.strip()[:300]}")
            return None
        return done.stdout

    def help_targets(self) -> set[str]:
        if self._help is None:
            out = self._run("-s", "help") or ""
            # One target a line: `make <target>   <what it does>`.
            self._help = set(re.findall(r"^\s*make\s+([A-Za-z0-9_.-]+)", out, re.M))
        return self._help

    def defined_targets(self) -> set[str]:
        """Targets the Makefile (and the files it includes from mk/) has rules for."""
        text = ""
        for makefile in [self.root / "Makefile", *sorted((self.root / "mk").glob("*.mk"))]:
            try:
                text += makefile.read_text(encoding="utf-8") + "\n"
            except OSError:
                continue
        targets: set[str] = set()
        for names in re.findall(r"^([A-Za-z0-9_.-][A-Za-z0-9_. -]*?)\s*::?(?!=)", text, re.M):
            targets.update(names.split())
        return targets

    def test_commands(self) -> str:
        if self._test is None:
            self._test = self._run("-n", "test") or ""
        return self._test

    def runs(self, rel: str) -> bool:
        """Whether `make test` runs the file `rel` (named, globbed, in a named test directory,
        a Rust test or source file under `cargo test`, or an example under `--example`)."""
        commands = self.test_commands()
        if not commands:
            return False
        if re.search(rf"(^|[\s'\"=]){re.escape(rel)}($|[\s'\":;])", commands, re.M):
            return True
        path = Path(rel)
        for token in re.split(r"[\s'\":;]+", commands):
            if not token or token.startswith("-"):
                continue
            if "*" in token and fnmatch.fnmatch(rel, token):
                return True
            if "/" in token and "tests" in Path(token).parts and rel.startswith(token.rstrip("/") + "/"):
                return True
        if path.suffix == ".rs":
            if path.parts[0] == "examples" or "examples" in path.parts:
                return bool(re.search(rf"cargo run\b[^\n]*--example\s+{re.escape(path.stem)}\b", commands))
            if ("tests" in path.parts or "src" in path.parts) and re.search(r"\bcargo test\b", commands):
                return True
        return False


def make_targets(text: str) -> list[str]:
    """Targets named by `make ...` calls in a line of shell or prose."""
    targets: list[str] = []
    for call in MAKE_CALL.finditer(text):
        for word in call.group(1).split():
            if word.startswith("#"):
                break
            if word.startswith("-") or "=" in word or word.startswith(("$", "`", "<")):
                continue
            if re.fullmatch(r"[A-Za-z0-9_.-]+", word):
                targets.append(word)
    return targets


# --------------------------------------------------------------------------- checks 1 and 2


def check_snippet(root: Path, page: Page, block: Block, make: Make, problems: Problems) -> None:
    where = f"{page.rel}:{block.line}"
    kind, value = block.marker or ("", "")
    if not block.marker:
        problems.add(
            where,
            f"```{block.lang or '(unlabelled)'} block has no marker on the line before it "
            "(<!-- snippet: FILE -->, <!-- run-by: TEST -->, or <!-- not-run: REASON -->)",
        )
        return
    if kind == "not-run":
        if len(value) < 3:
            problems.add(where, "not-run marker needs a reason")
        return
    target = root / value
    if not value or not target.is_file():
        problems.add(where, f"{kind}: {value!r} is not a file of the repository")
        return
    if not make.runs(value):
        problems.add(where, f"{kind}: `make test` does not run {value}")
    if kind == "run-by":
        if not reads_page(root, target, page.rel):
            problems.add(
                where,
                f"run-by: {value} does not read {page.rel} (name it by its repository path, "
                "or as Path(__file__).resolve().parents[N] / ... )",
            )
        return
    wanted = significant(block.lines)
    source = significant(target.read_text(encoding="utf-8", errors="replace").splitlines())
    if not wanted:
        problems.add(where, "snippet block is empty")
        return
    if any(source[i : i + len(wanted)] == wanted for i in range(len(source) - len(wanted) + 1)):
        return
    # Name the first line that breaks the best partial match, to make the fix obvious.
    best, best_at = 0, 0
    for i in range(len(source)):
        n = 0
        while n < len(wanted) and i + n < len(source) and source[i + n] == wanted[n]:
            n += 1
        if n > best:
            best, best_at = n, i
    detail = f"line {best + 1} of the block, {wanted[best]!r}"
    if best:
        detail += f" (after {best} matching lines at {value} non-blank line {best_at + 1})"
    problems.add(where, f"snippet: not a contiguous copy of {value}: {detail} differs")


def reads_page(root: Path, test: Path, page_rel: str) -> bool:
    """Whether the test file names the page: by its repository path (for a page in a folder),
    or by a path built from the test's own location: `Path(__file__).resolve().parents[N] /
    "README.md"`, `Path(__file__).parent.parent / ...`, or a name bound to such a folder."""
    text = test.read_text(encoding="utf-8", errors="replace")
    if "/" in page_rel and re.search(rf"(^|[^\w/.-]){re.escape(page_rel)}($|[^\w/.-])", text, re.M):
        return True
    here = test.resolve()
    folder = r"Path\(__file__\)(?:\.resolve\(\))?(?:\.parents\[(\d+)\]|((?:\.parent)+))"
    joined = r"((?:\s*/\s*[\"'][^\"']+[\"'])+)"

    def base(index: str, parents: str) -> Path | None:
        up = int(index) + 1 if index else parents.count(".parent")
        return here.parents[up - 1] if 0 < up <= len(here.parents) else None

    built: list[Path] = []
    places = [(base(index, parents), rest) for index, parents, rest in re.findall(folder + joined, text)]
    for name, index, parents in re.findall(rf"^\s*(\w+)\s*(?::[^=]+)?=\s*{folder}\s*$", text, re.M):
        places += [(base(index, parents), rest) for rest in re.findall(rf"\b{name}\b{joined}", text)]
    for start, rest in places:
        if start is not None:
            built.append(start.joinpath(*re.findall(r"[\"']([^\"']+)[\"']", rest)))
    return any(path.resolve() == (root / page_rel).resolve() for path in built)


def check_make_targets(page: Page, make: Make, problems: Problems) -> None:
    listed = make.help_targets()
    used: list[tuple[int, str]] = []
    for block in page.blocks:
        for offset, line in enumerate(block.lines, start=1):
            for target in make_targets(line.strip()):
                used.append((block.line + offset, target))
    for number, text in page.prose:
        for span in INLINE_CODE.findall(text):
            for target in make_targets(span.strip()):
                used.append((number, target))
    for number, target in used:
        if target not in listed:
            problems.add(f"{page.rel}:{number}", f"`make {target}` is not listed by `make help`")


def check_cargo_commands(root: Path, page: Page, make: Make, problems: Problems) -> None:
    """A `cargo build ...` or `cargo run ...` shown inline in prose (how the `fundcore` command and
    the examples are built and run) is run, as written, by a script `make test` runs (a block's
    commands are checked by their markers)."""
    scripts = [p for p in sorted((root / "scripts").glob("*.sh")) if make.runs(p.relative_to(root).as_posix())]
    texts = [p.read_text(encoding="utf-8") for p in scripts]
    for number, text in page.prose:
        for span in INLINE_CODE.findall(text):
            command = span.strip()
            if command.startswith(("cargo build ", "cargo run ")) and not any(command in t for t in texts):
                problems.add(
                    f"{page.rel}:{number}",
                    f"`{command}` is shown, but no script that `make test` runs has it (scripts/*.sh)",
                )


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: set[str] = set()
    fenced = False
    for line in lines:
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"^#{1,6}\s+(.*)$", line)):
            found.add(slug(heading.group(1)))
    return found


def check_links(root: Path, page: Page, problems: Problems) -> None:
    """Links between pages point to files of the repository, and anchors to their headings."""
    for number, text in page.prose:
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            path = (page.path.parent / file_part).resolve() if file_part else page.path.resolve()
            where = f"{page.rel}:{number}"
            if not path.is_relative_to(root.resolve()):
                problems.add(where, f"link {target!r} leaves the repository")
            elif not path.exists():
                problems.add(where, f"link {target!r}: no such file")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                problems.add(where, f"link {target!r}: no heading with that anchor")


# --------------------------------------------------------------------------- check 3: facts

UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "min": Decimal(60), "h": Decimal(3600),
         "KiB": Decimal(1024), "MiB": Decimal(1024**2), "GiB": Decimal(1024**3)}


def doc_numbers(text: str) -> list[Decimal]:
    """Numbers stated in a docs cell: `COP 500.000` (Colombian), `1,000`, `1–200`, `5 s`, `64 MiB`."""
    text = text.replace("`", "")
    numbers: list[tuple[int, Decimal]] = []

    def cop(match: re.Match[str]) -> str:
        numbers.append((match.start(), Decimal(match.group(1).replace(".", "").replace(",", "."))))
        return " " * len(match.group(0))

    text = re.sub(r"COP\s*\$?\s*(\d[\d.]*(?:,\d+)?)", cop, text)
    for match in re.finditer(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)(?:\s*(ms|s|min|h|KiB|MiB|GiB)\b)?", text):
        value = Decimal(match.group(1).replace(",", "")) * UNITS.get(match.group(2) or "", Decimal(1))
        numbers.append((match.start(), value))
    return [value for _, value in sorted(numbers, key=lambda item: item[0])]


def code_numbers(text: str) -> list[Decimal]:
    """Numbers in a code excerpt, with the constructors the code uses for them evaluated."""
    found: list[tuple[int, Decimal]] = []

    def from_parts(match: re.Match[str]) -> Decimal:
        lo, mid, hi, negative, scale = (part.strip().replace("_", "") for part in match.group(1).split(","))
        value = Decimal(int(lo) + (int(mid) << 32) + (int(hi) << 64)).scaleb(-int(scale))
        return -value if negative == "true" else value

    def number(literal: str) -> Decimal:
        return Decimal(literal.replace("_", ""))

    rules: list[tuple[str, Callable[[re.Match[str]], Decimal]]] = [
        (r"Decimal::from_parts\(([^)]*)\)", from_parts),
        (r"Duration::from_secs\((\d[\d_]*)\)", lambda m: number(m.group(1))),
        (r"Duration::from_millis\((\d[\d_]*)\)", lambda m: number(m.group(1)) / 1000),
        (r"dec!\((\d[\d_.]*)\)", lambda m: number(m.group(1))),
        (r"(?<![\w.])\d[\d_]*(?:\s*\*\s*\d[\d_]*)+(?![\w.])",
         lambda m: _product(m.group(0))),
        (r"(?<![\w.])\d[\d_]*(?:\.\d+)?(?![\w])", lambda m: number(m.group(0))),
    ]
    for pattern, convert in rules:
        def replace(match: re.Match[str], convert=convert) -> str:
            found.append((match.start(), convert(match)))
            return " " * len(match.group(0))
        text = re.sub(pattern, replace, text)
    return [value for _, value in sorted(found, key=lambda item: item[0])]


def _product(text: str) -> Decimal:
    result = Decimal(1)
    for factor in text.split("*"):
        result *= Decimal(factor.strip().replace("_", ""))
    return result


def table_after(lines: list[str], index: int) -> list[list[str]]:
    """The Markdown table that starts after line `index` (0-based), as rows of cells (header first)."""
    rows: list[list[str]] = []
    i = index + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    while i < len(lines) and lines[i].strip().startswith("|"):
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", lines[i].strip())[1:-1]]
        if not all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):
            rows.append(cells)
        i += 1
    return rows


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


class Facts:
    """Reads the code the docs quote."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def text(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def rust_struct_fields(self, name: str) -> list[str] | None:
        for path in sorted((self.root / "core/src").rglob("*.rs")):
            match = re.search(rf"\npub struct {name} \{{\n(.*?)\n\}}", path.read_text(encoding="utf-8"), re.S)
            if match:
                return re.findall(r"^\s*pub (\w+):", match.group(1), re.M)
        return None

    def error_codes(self) -> set[str]:
        return {code for _, code in self.core_variants()}

    def python_classes(self) -> dict[str, str]:
        """Code -> Python exception class, as `class_for_code` maps `ErrorCode` variants."""
        body = self.text("bindings-python/src/errors.rs").split("fn class_for_code", 1)[1]
        body = body.split("\n}\n", 1)[0]
        classes: dict[str, str] = {}
        for variants, cls in re.findall(r"((?:\|?\s*\w+\s*)+)=>\s*\"(\w+)\"", body):
            for variant in re.findall(r"\w+", variants):
                classes[screaming(variant)] = cls
        return classes

    def mobile_cases(self) -> dict[str, str]:
        """Code -> case of the mobile `FundError` (also its Swift name), as `from_core` maps it."""
        text = self.text("bindings-mobile/src/error.rs")
        body = text.split("pub fn from_core", 1)[1].split("\n    }\n", 1)[0]
        return {screaming(code): case for code, case in re.findall(r"C::(\w+) => FundError::(\w+)", body)}

    def core_variants(self) -> list[tuple[str, str]]:
        """(variant, code) of every core error variant, from `Error::code`."""
        body = self.text("core/src/error.rs").split("pub fn code(&self)", 1)[1].split("\n    }\n", 1)[0]
        pairs: list[tuple[str, str]] = []
        # an arm may match a variant's fields (`Error::DiskFault { in_doubt: true, .. }`)
        for arm, code in re.findall(r"((?:\|?\s*Error::\w+ \{[^}]*\}\s*)+)=>\s*\{?\s*ErrorCode::(\w+)", body):
            pairs.extend((variant, screaming(code)) for variant in re.findall(r"Error::(\w+)", arm))
        return pairs

    def http_statuses(self) -> dict[str, int]:
        """Code -> HTTP status, as the core answers it: `ErrorCode::kind` gives each code its
        kind, `ErrorKind::http_status` each kind its status (core/src/error.rs)."""
        text = self.text("core/src/error.rs")
        kinds_body = text.split("pub fn kind(self) -> ErrorKind", 1)[1].split("\n    }\n", 1)[0]
        kinds: dict[str, str] = {}
        for variants, kind in re.findall(r"((?:\|?\s*\w+\s*)+)=>\s*ErrorKind::(\w+)", kinds_body):
            for variant in re.findall(r"\w+", variants):
                kinds[screaming(variant)] = kind
        status_body = text.split("impl ErrorKind", 1)[1].split("pub fn http_status(self)", 1)[1]
        status_body = status_body.split("\n    }\n", 1)[0]
        statuses = {kind: int(status) for kind, status in re.findall(r"ErrorKind::(\w+)\s*=>\s*(\d{3})", status_body)}
        if not kinds or not statuses:
            raise LookupError("ErrorCode::kind or ErrorKind::http_status not found in core/src/error.rs")
        return {code: statuses[kind] for code, kind in kinds.items() if kind in statuses}

    def core_source(self) -> str:
        """Every Rust source file of the core, one after the other."""
        return "\n".join(p.read_text(encoding="utf-8") for p in sorted((self.root / "core/src").rglob("*.rs")))

    def format_strings(self, *functions: str) -> tuple[str, list[str]]:
        """Where the first of `functions` that the core defines lives, and the text of every
        string literal in its body, `{...}` kept (the texts it can return)."""
        for function in functions:
            for path in sorted((self.root / "core/src").rglob("*.rs")):
                text = path.read_text(encoding="utf-8")
                found = re.search(rf"^( *)(?:pub(?:\([^)]*\))? )?fn {function}\(", text, re.M)
                if not found:
                    continue
                body = text[found.end():].split(f"\n{found.group(1)}}}\n", 1)[0]
                literals = re.findall(r'"((?:[^"\\]|\\[\s\S])*)"', body)
                # A `\` at the end of a line continues the string without the line break and
                # the indentation that follows.
                rel = path.relative_to(self.root).as_posix()
                return rel, [re.sub(r"\\\n\s*", "", literal) for literal in literals]
        raise LookupError(f"no fn {' or '.join(functions)} in core/src")

    def limits(self) -> dict[str, Decimal]:
        """The constants of core/src/limits.rs, evaluated."""
        text = self.text("core/src/limits.rs")
        return {
            name: code_numbers(value)[0]
            for name, value in re.findall(r"pub const (\w+): \w+ = ([^;]+);", text)
        }

    def rendered(self, template: str, rel: str) -> str:
        """A text template of `rel` as the code renders it: `{LIMIT}` is the limit's value, and
        `{}` filled with `format_cop(LIMIT)` is that limit in pesos (`COP $1.000`)."""
        limits = self.limits()
        text = re.sub(r"\{(\w+)\}", lambda m: f"{limits[m.group(1)]:f}" if m.group(1) in limits else m.group(0),
                      template)
        if "{}" in text:
            escaped = re.escape(template.replace("\\", "\\\\"))
            found = re.search(escaped + r'",\s*format_cop\((\w+)\)', self.text(rel))
            if found and found.group(1) in limits:
                whole = f"{limits[found.group(1)]:,.0f}".replace(",", ".")
                text = text.replace("{}", f"COP ${whole}", 1)
        return text

    def kotlin_classes(self) -> set[str]:
        text = self.text("bindings-mobile/kotlin/com/fundcore/FundExceptionExt.kt")
        return set(re.findall(r"is (FundException\.\w+)", text))

    def host_table(self, name: str) -> dict[str, int]:
        tree = ast.parse(self.text("examples/fastapi_host/fundcore_host/errors.py"))
        for node in tree.body:
            target = node.target if isinstance(node, ast.AnnAssign) else (
                node.targets[0] if isinstance(node, ast.Assign) else None)
            if isinstance(target, ast.Name) and target.id == name and node.value is not None:
                return ast.literal_eval(node.value)
        raise LookupError(f"{name} not found in examples/fastapi_host/fundcore_host/errors.py")

    def catalogue(self) -> list[tuple[int, str, Decimal, str]]:
        body = self.text("core/src/fund.rs").split("pub fn default_catalogue", 1)[1]
        return [
            (int(fund_id), name, Decimal(minimum.replace("_", "")), category.upper())
            for fund_id, name, minimum, category in re.findall(
                r'Fund::new\(\s*(\d+),\s*"([^"]+)",\s*dec!\(([\d_.]+)\),\s*Category::(\w+),?\s*\)', body
            )
        ]

    def validation_fields(self) -> set[str]:
        fields: set[str] = set()
        for folder in ("core/src", "bindings-python/src", "bindings-mobile/src"):
            for path in (self.root / folder).rglob("*.rs"):
                text = path.read_text(encoding="utf-8")
                fields.update(re.findall(r'(?:invalid|config_error)\(\s*"(\w+)"', text))
                fields.update(re.findall(r'non_negative\([^,()]+,\s*"(\w+)"', text))
                fields.update(re.findall(r'delay\([^,()]+,\s*"(\w+)"', text))
                fields.update(re.findall(r'field:\s*"(\w+)"', text))
                # a setting of one kind of store, refused on its name by the other (ConfigBuilder)
                fields.update(re.findall(r'(?:postgres|embedded)_only\.push\(\s*"(\w+)"', text))
                fields.update(re.findall(r'IdKind::\w+ => "(\w+)"', text))
        return fields


#: Every kind of checked table or block docs/ must have, so removing a marker cannot skip a check.
REQUIRED_CHECKS = {
    "limits", "catalogue", "engine-errors", "host-errors", "messages", "notification-texts",
    "validation-fields",
    *(f"record {name}" for name in (
        "Fund", "Client", "Subscription", "Transaction", "Notification", "AuditEvent", "OutboxState",
        "DispatchReport",
    )),
}


def check_facts(root: Path, pages: list[Page], problems: Problems) -> None:
    facts = Facts(root)
    seen: set[str] = set()
    for page in pages:
        if not page.rel.startswith("docs/"):
            continue
        for index, line in enumerate(page.lines):
            marker = CHECKED.match(line.strip())
            if not marker:
                continue
            kind = marker.group(1)
            seen.add(kind)
            where = f"{page.rel}:{index + 1}"
            try:
                if kind.startswith("record "):
                    check_record(facts, page, index, kind.split(" ", 1)[1], where, problems)
                elif kind in CHECKERS:
                    CHECKERS[kind](facts, table_after(page.lines, index), where, problems)
                else:
                    problems.add(where, f"unknown checked kind {kind!r}")
            except (OSError, LookupError, ValueError, IndexError) as exc:
                problems.add(where, f"checked {kind}: cannot read the code it quotes ({exc})")
    for kind in sorted(REQUIRED_CHECKS - seen):
        problems.add("docs/", f"no <!-- checked: {kind} --> table or block (its check cannot run)")


def screaming(camel: str) -> str:
    """`ErrorCode` variant -> its code, as strum's SCREAMING_SNAKE_CASE spells it."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).upper()


def header_index(rows: list[list[str]], *names: str) -> list[int]:
    header = [cell.lower() for cell in rows[0]]
    return [header.index(name) for name in names]


def check_limits(facts: Facts, rows: list[list[str]], where: str, problems: Problems) -> None:
    value_at, code_at = header_index(rows, "value", "in the code")
    for row in rows[1:]:
        quoted = backticked(row[code_at])
        files = [q for q in quoted if re.fullmatch(r"[\w./-]+\.(rs|py|kt|toml)", q)]
        if not files:
            problems.add(where, f"limits row {row[0]!r}: no source file in {row[code_at]!r}")
            continue
        source = re.sub(r"\s+", " ", facts.text(files[0]))
        excerpts = [q for q in quoted if q not in files]
        missing = [e for e in excerpts if re.sub(r"\s+", " ", e) not in source]
        if missing or not excerpts:
            problems.add(where, f"limits row {row[0]!r}: {missing or 'no excerpt'} not found in {files[0]}")
            continue
        stated = doc_numbers(row[value_at])
        actual = [n for e in excerpts for n in code_numbers(e)]
        if stated != actual:
            problems.add(
                where,
                f"limits row {row[0]!r}: the docs say {[str(n) for n in stated]}, "
                f"the code says {[str(n) for n in actual]}",
            )


def check_catalogue(facts: Facts, rows: list[list[str]], where: str, problems: Problems) -> None:
    id_at, name_at, minimum_at, category_at = header_index(rows, "id", "name", "minimum", "category")
    stated = []
    for row in rows[1:]:
        minimum = doc_numbers(row[minimum_at])
        stated.append((int(row[id_at]), row[name_at].strip("`"), minimum[0] if minimum else None,
                       row[category_at].strip("`")))
    actual = facts.catalogue()
    if stated != actual:
        problems.add(where, f"catalogue differs from default_catalogue(): docs {stated}, code {actual}")


def check_engine_errors(facts: Facts, rows: list[list[str]], where: str, problems: Problems) -> None:
    code_at, http_at, python_at, kotlin_at, swift_at = header_index(rows, "code", "http", "python", "kotlin", "swift")
    statuses = facts.http_statuses()
    classes = facts.python_classes()
    mobile = facts.mobile_cases()
    kotlin = facts.kotlin_classes()
    documented: set[str] = set()
    for row in rows[1:]:
        for code in backticked(row[code_at]):
            documented.add(code)
            if str(statuses.get(code)) != row[http_at]:
                problems.add(
                    where,
                    f"{code}: HTTP {row[http_at]} in the docs, {statuses.get(code)} in the core "
                    "(ErrorCode::kind and ErrorKind::http_status, core/src/error.rs)",
                )
            if f"`{classes.get(code)}`" not in row[python_at]:
                problems.add(where, f"{code}: Python class {row[python_at]} in the docs, {classes.get(code)} in the binding")
            case = mobile.get(code)
            swift = f"FundError.{case}"
            if f"`{swift}`" not in row[swift_at]:
                problems.add(where, f"{code}: Swift {row[swift_at]} in the docs, {swift} in the binding")
            kotlin_name = f"FundException.{re.sub(r'Error$', 'Exception', case or '')}"
            if f"`{kotlin_name}`" not in row[kotlin_at] or kotlin_name not in kotlin:
                problems.add(where, f"{code}: Kotlin {row[kotlin_at]} in the docs, {kotlin_name} in the binding")
    for code in sorted(facts.error_codes() ^ documented):
        problems.add(where, f"{code}: in the {'code' if code not in documented else 'docs'} only")


def check_host_errors(facts: Facts, rows: list[list[str]], where: str, problems: Problems) -> None:
    code_at, http_at = header_index(rows, "code", "http")
    stated = {code: row[http_at] for row in rows[1:] for code in backticked(row[code_at])}
    actual = {code: str(status) for code, status in facts.host_table("HOST_STATUS").items()}
    for code in sorted(set(stated) | set(actual)):
        if stated.get(code) != actual.get(code):
            problems.add(
                where,
                f"host error {code}: HTTP {stated.get(code, '(none)')} in the docs, "
                f"{actual.get(code, '(none)')} in HOST_STATUS of examples/fastapi_host/fundcore_host/errors.py",
            )


def quoted_in(source: str, template: str) -> bool:
    """Whether `template`, with `<...>` standing for values, is a string of `source`."""
    pieces = re.split(r"<[^>]+>", template)
    return re.search(r"\{[^}]*\}".join(re.escape(piece) for piece in pieces), source) is not None


def templates_in_columns(rows: list[list[str]], prefix: str) -> list[str]:
    columns = [i for i, name in enumerate(rows[0]) if name.lower().startswith(prefix)]
    return [text for row in rows[1:] for i in columns for text in backticked(row[i])]


def canonical(template: str) -> str:
    return re.sub(r"<[^>]+>|\{[^}]*\}", "<>", template)


def check_messages(facts: Facts, rows: list[list[str]], where: str, problems: Problems) -> None:
    documented = templates_in_columns(rows, "message")
    rel, literals = facts.format_strings("error_message", "message")
    in_code = [literal for literal in literals if "{" in literal]
    code_forms = {canonical(literal) for literal in in_code}
    for template in documented:
        if canonical(template) not in code_forms:
            problems.add(where, f"message {template!r} is not in {rel}")
    doc_forms = {canonical(template) for template in documented}
    for literal in in_code:
        if canonical(literal) not in doc_forms:
            problems.add(where, f"the message {literal!r} of {rel} is not documented")


def check_notification_texts(facts: Facts, rows: list[list[str]], where: str, problems: Problems) -> None:
    source = facts.core_source()
    for template in templates_in_columns(rows, "text"):
        if not quoted_in(source, template):
            problems.add(where, f"notification text {template!r} is not in core/src")


def check_validation_fields(facts: Facts, rows: list[list[str]], where: str, problems: Problems) -> None:
    rel, templates = facts.format_strings("invalid_text", "text")
    literals = [facts.rendered(template, rel) for template in templates]
    known = facts.validation_fields()
    named = {name for row in rows[1:] for name in backticked(row[0])}
    for name in sorted(named - known):
        problems.add(where, f"validation field {name!r} is not raised anywhere in the code")
    for name in sorted(known - named):
        problems.add(where, f"validation field {name!r} is raised by the code but not documented")
    documented = templates_in_columns(rows, "problem")
    for text in documented:
        if text not in literals:
            problems.add(where, f"problem text {text!r} is not in {rel}")
    for literal in literals:
        if literal not in documented:
            problems.add(where, f"the problem text {literal!r} of {rel} is not documented")


def check_record(facts: Facts, page: Page, index: int, name: str, where: str, problems: Problems) -> None:
    fields = facts.rust_struct_fields(name)
    if fields is None:
        problems.add(where, f"record {name}: no `pub struct {name}` in core/src")
        return
    block = next((b for b in page.blocks if b.line > index + 1), None)
    rows = table_after(page.lines, index)
    if rows:
        documented = [name for row in rows[1:] for name in backticked(row[0])[:1]]
    elif block is not None and block.lang == "json" and block.line == next_non_empty(page.lines, index) + 1:
        documented = list(json.loads("\n".join(block.lines)))
    else:
        problems.add(where, f"record {name}: the marker must precede a table or a json block")
        return
    if documented != fields:
        problems.add(where, f"record {name}: docs list {documented}, the struct has {fields}")


def next_non_empty(lines: list[str], index: int) -> int:
    i = index + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


CHECKERS = {
    "limits": check_limits,
    "catalogue": check_catalogue,
    "engine-errors": check_engine_errors,
    "host-errors": check_host_errors,
    "messages": check_messages,
    "notification-texts": check_notification_texts,
    "validation-fields": check_validation_fields,
}


# --------------------------------------------------------------------------- main


def run(root: Path, facts: bool = True) -> list[str]:
    problems = Problems()
    make = Make(root)
    pages = [parse_page(root, path) for path in find_pages(root)]
    for page in pages:
        for block in page.blocks:
            if needs_marker(block):
                check_snippet(root, page, block, make, problems)
        check_make_targets(page, make, problems)
        check_cargo_commands(root, page, make, problems)
        check_links(root, page, problems)
    for target in sorted(make.help_targets() - make.defined_targets()):
        problems.add("Makefile", f"`make help` lists `make {target}`, which the Makefile does not define")
    if facts:
        check_facts(root, pages, problems)
    for error in dict.fromkeys(make.errors):
        problems.add("Makefile", error)
    return problems.items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    root = args.root.resolve()
    problems = run(root)
    pages = len(find_pages(root))
    if problems:
        print(f"check_snippets: {len(problems)} problem(s) in {pages} pages:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"check_snippets: {pages} pages, every code block, make target and checked fact agrees with the code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
