"""Tests of scripts/check_snippets.py: each check finds what it must, on small trees built here
and on a copy of the repository's own docs and code with one fact changed.

Run by `make check-snippets`: python3 -m unittest discover -s scripts -p 'test_check_snippets.py'
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_snippets  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

MAKEFILE = """\
.PHONY: help test test-py test-rust
help:
\t@echo "make help   this list"
\t@echo "make test   everything"
test: test-py test-rust
test-py:
\tpython3 -m pytest pkg/tests -q
test-rust:
\tcargo test --workspace --examples
\tcargo run --example hello
\tscripts/commands.sh
"""


def fence(lang: str, body: str) -> str:
    return f"```{lang}\n{textwrap.dedent(body).strip()}\n```"


class SnippetTree(unittest.TestCase):
    """A small repository: a Makefile, a program run by `make test`, a test, one README."""

    def setUp(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="check-snippets-"))
        self.addCleanup(shutil.rmtree, self.root)
        self.write("Makefile", MAKEFILE)
        self.write("examples/hello.rs", 'fn main() {\n    let x = 1;\n    println!("{x}");\n}\n')
        self.write("examples/unrun.rs", "fn main() {\n    let y = 2;\n}\n")
        self.write("pkg/tests/test_readme.py", "README = Path(__file__).resolve().parents[2] / 'README.md'\n")
        self.write("tools/test_other.py", "README = Path(__file__).parent.parent / 'README.md'\n")
        self.write("scripts/commands.sh", "cargo build --release -p tool --bin tool\n")
        self.write("scripts/unrun.sh", "cargo build --bin other\n")

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def problems(self, readme: str) -> list[str]:
        self.write("README.md", readme)
        return check_snippets.run(self.root, facts=False)

    def assert_one_problem(self, readme: str, *fragments: str) -> None:
        problems = self.problems(readme)
        self.assertEqual(len(problems), 1, problems)
        for fragment in fragments:
            self.assertIn(fragment, problems[0])

    def test_a_block_of_a_running_language_needs_a_marker(self) -> None:
        for lang in ("rust", "python", "kotlin", "java", "swift", "sh", "bash", "shell", "console"):
            with self.subTest(lang=lang):
                self.assert_one_problem(f"# t\n\n{fence(lang, 'x = 1')}\n", "README.md:3", "no marker")

    def test_output_and_data_blocks_need_no_marker(self) -> None:
        readme = "\n\n".join([
            fence("json", '{"a": 1}'),
            fence("text", "make test"),
            fence("", "   core/   the crate\n   docs/   the reference"),
        ])
        self.assertEqual(self.problems(readme), [])

    def test_an_unlabelled_block_of_commands_needs_a_marker(self) -> None:
        self.assert_one_problem(fence("", "cd somewhere\ncargo build"), "(unlabelled)", "no marker")

    def test_a_marker_must_be_on_the_previous_non_empty_line(self) -> None:
        readme = f"<!-- not-run: output -->\nSome words.\n\n{fence('sh', 'ls')}\n"
        self.assert_one_problem(readme, "README.md:4", "no marker")

    def test_a_verbatim_copy_of_a_program_that_make_test_runs_passes(self) -> None:
        block = fence("rust", 'let x = 1;\n\n      println!("{x}");')
        self.assertEqual(self.problems(f"<!-- snippet: examples/hello.rs -->\n{block}\n"), [])

    def test_a_snippet_that_differs_from_its_file_names_the_line(self) -> None:
        block = fence("rust", 'let x = 1;\nprintln!("{x} changed");')
        self.assert_one_problem(
            f"<!-- snippet: examples/hello.rs -->\n{block}\n", "not a contiguous copy", "line 2 of the block"
        )

    def test_a_snippet_must_be_contiguous(self) -> None:
        block = fence("rust", 'fn main() {\nprintln!("{x}");')
        self.assert_one_problem(f"<!-- snippet: examples/hello.rs -->\n{block}\n", "not a contiguous copy")

    def test_a_snippet_of_a_file_that_make_test_only_builds_fails(self) -> None:
        readme = f"<!-- snippet: examples/unrun.rs -->\n{fence('rust', 'let y = 2;')}\n"
        self.assert_one_problem(readme, "`make test` does not run examples/unrun.rs")

    def test_a_build_command_shown_inline_is_run_as_written_by_a_script(self) -> None:
        self.assertEqual(self.problems("Built with `cargo build --release -p tool --bin tool`.\n"), [])
        self.assert_one_problem(
            "Built with `cargo build --release --features x --bin tool`.\n",
            "`cargo build --release --features x --bin tool` is shown",
        )
        # A script that make test does not run does not count.
        self.assert_one_problem("Built with `cargo build --bin other`.\n", "no script")

    def test_a_snippet_of_a_missing_file_fails(self) -> None:
        readme = f"<!-- snippet: examples/nope.rs -->\n{fence('rust', 'let y = 2;')}\n"
        self.assert_one_problem(readme, "'examples/nope.rs' is not a file")

    def test_run_by_a_test_that_make_test_runs_and_that_reads_the_page_passes(self) -> None:
        readme = f"<!-- run-by: pkg/tests/test_readme.py -->\n{fence('python', 'print(1)')}\n"
        self.assertEqual(self.problems(readme), [])

    def test_run_by_a_test_that_never_mentions_the_page_fails(self) -> None:
        self.write("pkg/tests/test_readme.py", "nothing here\n")
        readme = f"<!-- run-by: pkg/tests/test_readme.py -->\n{fence('python', 'print(1)')}\n"
        self.assert_one_problem(readme, "does not read README.md")

    def test_run_by_a_test_that_reads_another_page_of_the_same_name_fails(self) -> None:
        self.write("pkg/tests/test_readme.py", "README = Path(__file__).resolve().parents[1] / 'README.md'\n")
        readme = f"<!-- run-by: pkg/tests/test_readme.py -->\n{fence('python', 'print(1)')}\n"
        self.assert_one_problem(readme, "does not read README.md")

    def test_run_by_a_test_may_name_the_page_by_its_path(self) -> None:
        self.write("pkg/README.md", f"<!-- run-by: pkg/tests/test_readme.py -->\n{fence('python', 'print(2)')}\n")
        for text in (
            "PAGES = ['pkg/README.md', Path(__file__).parent.parent.parent / 'README.md']\n",
            "REPO = Path(__file__).resolve().parents[2]\nPAGES = [REPO / 'README.md', REPO / 'pkg' / 'README.md']\n",
        ):
            with self.subTest(text=text):
                self.write("pkg/tests/test_readme.py", text)
                readme = f"<!-- run-by: pkg/tests/test_readme.py -->\n{fence('python', 'print(1)')}\n"
                self.assertEqual(self.problems(readme), [])

    def test_run_by_a_test_that_make_test_does_not_run_fails(self) -> None:
        readme = f"<!-- run-by: tools/test_other.py -->\n{fence('python', 'print(1)')}\n"
        self.assert_one_problem(readme, "`make test` does not run tools/test_other.py")

    def test_not_run_needs_a_reason(self) -> None:
        self.assertEqual(self.problems(f"<!-- not-run: serves forever -->\n{fence('sh', 'make test')}\n"), [])
        self.assert_one_problem(f"<!-- not-run: -->\n{fence('sh', 'make test')}\n", "needs a reason")

    def test_every_make_target_is_listed_by_make_help(self) -> None:
        readme = (
            f"<!-- not-run: the whole suite -->\n{fence('sh', 'make test && make deploy # ship')}\n\n"
            "Run `make bench BENCH_ARGS=--quick` for figures; this does not make any target.\n"
        )
        problems = self.problems(readme)
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("`make deploy` is not listed by `make help`", problems[0])
        self.assertIn("README.md:6: `make bench` is not listed", problems[1])

    def test_make_help_lists_only_targets_the_makefile_defines(self) -> None:
        self.write("Makefile", MAKEFILE.replace('"make test   everything"', '"make test   everything"\n\t@echo "make tset   typo"'))
        self.assert_one_problem("# t\n", "`make help` lists `make tset`, which the Makefile does not define")

    def test_reading_what_make_test_runs_starts_no_database(self) -> None:
        # Like the project's Makefile: a recipe line with $(MAKE) runs even in a dry run, and
        # without FUNDCORE_TEST_DATABASE_URL it would start a server first.
        wrapped = MAKEFILE.replace(
            "test: test-py test-rust\n",
            "WITH_PG := $(if $(FUNDCORE_TEST_DATABASE_URL),,touch server-started &&)\n"
            "test:\n\t$(WITH_PG) $(MAKE) test-py test-rust\n",
        )
        self.write("Makefile", wrapped)
        block = fence("rust", "let x = 1;")
        self.assertEqual(self.problems(f"<!-- snippet: examples/hello.rs -->\n{block}\n"), [])
        self.assertFalse((self.root / "server-started").exists())

    def test_links_point_to_files_and_headings_of_the_repository(self) -> None:
        self.write("docs/a.md", "# A page\n\n## Money and `fork()`\n")
        readme = (
            "See [a](docs/a.md), [its part](docs/a.md#money-and-fork), [the web](https://example.com).\n"
            "Broken: [gone](docs/gone.md), [part](docs/a.md#nothing), [out](../outside.md).\n"
        )
        problems = self.problems(readme)
        self.assertEqual(len(problems), 3, problems)
        self.assertIn("'docs/gone.md': no such file", problems[0])
        self.assertIn("'docs/a.md#nothing': no heading", problems[1])
        self.assertIn("'../outside.md' leaves the repository", problems[2])

    def test_pages_are_readmes_and_docs_outside_build_folders(self) -> None:
        for rel in ("docs/a.md", "sub/README.md", "target/README.md", ".venv/x/README.md", "docs/sub/b.md"):
            self.write(rel, f"{fence('sh', 'ls')}\n")
        self.write("README.md", "# t\n")
        found = sorted(p.relative_to(self.root).as_posix() for p in check_snippets.find_pages(self.root))
        self.assertEqual(found, ["README.md", "docs/a.md", "sub/README.md"])


class FactsOfTheRepository(unittest.TestCase):
    """The facts check on a copy of this repository's docs and code, with one fact changed."""

    COPIED = [
        "docs",
        "core/src",
        "bindings-python/src",
        "bindings-mobile/src",
        "bindings-mobile/kotlin",
        "examples/fastapi_host/fundcore_host",
    ]

    def setUp(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="check-facts-"))
        self.addCleanup(shutil.rmtree, self.root)
        for rel in self.COPIED:
            shutil.copytree(REPO / rel, self.root / rel, ignore=shutil.ignore_patterns("__pycache__"))

    def facts(self) -> list[str]:
        pages = [check_snippets.parse_page(self.root, p) for p in check_snippets.find_pages(self.root)]
        problems = check_snippets.Problems()
        check_snippets.check_facts(self.root, pages, problems)
        return problems.items

    def changed(self, rel: str, old: str, new: str) -> list[str]:
        """The problems that appear when `old` becomes `new` in `rel` (a file, or the one file of a
        folder that has `old`), and only those."""
        before = self.facts()
        path = self.root / rel
        if path.is_dir():  # the one file of that folder that has `old`, wherever the code moved it
            holders = [p for p in sorted(path.rglob("*.rs")) if old in p.read_text(encoding="utf-8")]
            self.assertEqual(len(holders), 1, f"{old!r} in {holders}")
            path = holders[0]
        text = path.read_text(encoding="utf-8")
        self.assertIn(old, text)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return [problem for problem in self.facts() if problem not in before]

    def assert_found(self, problems: list[str], *fragments: str) -> None:
        self.assertTrue(problems, "the change went unnoticed")
        self.assertTrue(any(all(f in p for f in fragments) for p in problems), problems)

    def test_a_limit_the_docs_misquote_is_found(self) -> None:
        self.assert_found(self.changed("docs/rules.md", "| 1–200 |", "| 1–100 |"), "history page size", "'100'", "'200'")

    def test_a_limit_changed_in_the_code_is_found(self) -> None:
        self.assert_found(
            self.changed("core/src", "DEFAULT_MAX_ATTEMPTS: u32 = 8;", "DEFAULT_MAX_ATTEMPTS: u32 = 10;"),
            "DEFAULT_MAX_ATTEMPTS: u32 = 8",
            "not found",
        )

    def test_a_default_in_other_units_is_compared_as_a_quantity(self) -> None:
        self.assert_found(self.changed("docs/rules.md", "| 1 h |", "| 1 min |"), "longest delay", "'60'", "'3600'")

    def test_a_catalogue_change_is_found(self) -> None:
        self.assert_found(
            self.changed("core/src", 'dec!(250000.00)', 'dec!(260000.00)'), "catalogue differs"
        )

    def test_an_http_status_changed_in_the_core_is_found(self) -> None:
        self.assert_found(
            self.changed("core/src", "ErrorKind::Conflict => 409,", "ErrorKind::Conflict => 400,"),
            "FUND_INACTIVE: HTTP 409 in the docs, 400 in the core",
        )

    def test_a_code_given_another_kind_in_the_core_is_found(self) -> None:
        self.assert_found(
            self.changed(
                "core/src",
                "StorageError | OutcomeUnknown => ErrorKind::Unavailable,",
                "StorageError => ErrorKind::Conflict,\n            OutcomeUnknown => ErrorKind::Unavailable,",
            ),
            "STORAGE_ERROR: HTTP 503 in the docs, 409 in the core",
        )

    def test_an_http_status_the_docs_misquote_is_found(self) -> None:
        self.assert_found(
            self.changed("docs/errors.md", "| `FUND_NOT_FOUND` | 404 |", "| `FUND_NOT_FOUND` | 422 |"),
            "FUND_NOT_FOUND: HTTP 422 in the docs, 404 in the core",
        )

    def test_a_python_class_that_differs_from_the_binding_is_found(self) -> None:
        self.assert_found(
            self.changed("docs/errors.md", "| 409 | `ConflictError` | `FundException.NotSubscribed`", "| 409 | `ValidationError` | `FundException.NotSubscribed`"),
            "NOT_SUBSCRIBED: Python class",
        )

    def test_an_undocumented_error_code_is_found(self) -> None:
        self.assert_found(
            self.changed("core/src", "=> ErrorCode::FundInactive,", "=> ErrorCode::FundClosed,"),
            "FUND_CLOSED: in the code only",
        )

    def test_a_message_changed_in_the_code_is_found(self) -> None:
        self.assert_found(
            self.changed("core/src", "No tiene saldo disponible para", "Sin saldo disponible para"),
            "No tiene saldo disponible para vincularse al fondo <fund>",
            "is not in core/src/",
        )

    def test_a_validation_text_changed_in_the_code_is_found(self) -> None:
        self.assert_found(
            self.changed("core/src", "el límite debe estar entre 1 y {MAX_PAGE}", "el límite debe estar entre 1 y 500"),
            "is not documented",
        )

    def test_a_limit_changed_in_the_limits_module_reaches_the_texts_check(self) -> None:
        self.assert_found(
            self.changed("core/src", "MAX_PAGE: usize = 200;", "MAX_PAGE: usize = 300;"),
            "the limit must be between 1 and 300",
        )

    def test_a_validation_field_the_docs_lack_is_found(self) -> None:
        self.assert_found(
            self.changed("core/src", 'Error::invalid("phone", Invalid::Phone)', 'Error::invalid("mobile", Invalid::Phone)'),
            "'mobile' is raised by the code but not documented",
        )

    def test_a_record_field_the_docs_lack_is_found(self) -> None:
        self.assert_found(
            self.changed("core/src", "    pub balance_after: Decimal,\n", "    pub balance_after: Decimal,\n    pub note: String,\n"),
            "record Transaction",
            "'note'",
        )

    def test_a_notification_text_changed_in_the_code_is_found(self) -> None:
        self.assert_found(
            self.changed("core/src", "Suscripción confirmada: {fund}", "Suscripción registrada: {fund}"),
            "Suscripción confirmada: <fund>",
        )

    def test_removing_a_checked_marker_is_found(self) -> None:
        self.assert_found(
            self.changed("docs/rules.md", "<!-- checked: catalogue -->\n", ""), "no <!-- checked: catalogue -->"
        )


if __name__ == "__main__":
    unittest.main()
