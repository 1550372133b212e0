"""Tests of scripts/check_versions.py on a small tree: agreeing versions pass; each artifact
that disagrees is named.

Run by `make lint`: python3 -m unittest discover -s scripts -p 'test_check_versions.py'
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_versions  # noqa: E402


class VersionTree(unittest.TestCase):
    def setUp(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="check-versions-"))
        self.addCleanup(shutil.rmtree, self.root)
        self.write("Cargo.toml", '[workspace.package]\nversion = "1.4.2"\n')
        for crate in ("core", "bindings-python", "bindings-mobile"):
            self.write(f"{crate}/Cargo.toml", '[package]\nname = "x"\nversion.workspace = true\n')
        self.write("bindings-python/pyproject.toml", '[project]\nname = "fundcore"\ndynamic = ["version"]\n')
        self.wheel("1.4.2")
        self.write("dist/fundcore-1.4.2.tar.gz", "")
        self.write("python", "#!/bin/sh\necho 1.4.2\n")
        (self.root / "python").chmod(0o755)
        self.write(
            "bindings-mobile/jvm/pom.xml",
            '<project xmlns="http://maven.apache.org/POM/4.0.0"><version>1.4.2</version></project>',
        )
        self.write("bindings-mobile/apple/Package.swift", 'url: "https://h/releases/download/v1.4.2/F.zip",')
        self.write("CHANGELOG.md", "# Changelog\n\n## [1.4.2] - unreleased\n\n## [1.4.1]\n")
        self.write("core/README.md", '```toml\n[dependencies]\nfundcore = { version = "1.4" }\n```\n')

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def wheel(self, version: str) -> None:
        (self.root / "dist").mkdir(exist_ok=True)
        for old in (self.root / "dist").glob("*.whl"):
            old.unlink()
        with zipfile.ZipFile(self.root / f"dist/fundcore-{version}-cp310-abi3-x.whl", "w") as archive:
            archive.writestr(f"fundcore-{version}.dist-info/METADATA", f"Name: fundcore\nVersion: {version}\n")

    def problems(self) -> int:
        # The lines it prints are for people; the tests read the exit status.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return check_versions.main(["--root", str(self.root), "--python", str(self.root / "python")])

    def test_agreeing_versions_pass(self) -> None:
        self.assertEqual(self.problems(), 0)

    def test_each_artifact_that_disagrees_fails(self) -> None:
        changes = {
            "bindings-mobile/jvm/pom.xml": '<project xmlns="http://maven.apache.org/POM/4.0.0"><version>1.4.1</version></project>',
            "bindings-mobile/apple/Package.swift": 'url: "https://h/releases/download/v1.4.1/F.zip",',
            "CHANGELOG.md": "## [1.5.0]\n",
            "core/README.md": 'fundcore = { version = "1.5" }\n',
            "python": "#!/bin/sh\necho 1.4.1\n",
            "bindings-python/pyproject.toml": '[project]\nname = "fundcore"\nversion = "1.4.1"\n',
        }
        for rel, text in changes.items():
            with self.subTest(rel):
                before = (self.root / rel).read_text(encoding="utf-8")
                self.write(rel, text)
                self.assertEqual(self.problems(), 1)
                self.write(rel, before)
        self.wheel("1.4.1")
        self.assertEqual(self.problems(), 1)
        shutil.rmtree(self.root / "dist")
        self.assertEqual(self.problems(), 1, "nothing built is not agreement")


if __name__ == "__main__":
    unittest.main()
