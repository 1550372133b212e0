#!/usr/bin/env python3
"""One version for every artifact (make lint): the workspace's version (Cargo.toml), which the
crate, the wheel and the sdist take from it, must also be the one of the built wheel and sdist in
dist/, of `fundcore.__version__` in .venv, of the JVM artifact's POM, of the Swift package's
release URL and of the newest CHANGELOG.md entry; core/README.md's dependency line must accept it.

    python3 scripts/check_versions.py [--root DIR] [--python .venv/bin/python]

Exit status 0 when they agree, 1 with one line per disagreement.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def workspace_version(root: Path) -> str:
    cargo = tomllib.loads((root / "Cargo.toml").read_text(encoding="utf-8"))
    return str(cargo["workspace"]["package"]["version"])


def versions(root: Path, python: Path) -> list[tuple[str, str | None]]:
    """(where, the version found there, or None when it says none)."""
    found: list[tuple[str, str | None]] = []
    for manifest in ("core/Cargo.toml", "bindings-python/Cargo.toml", "bindings-mobile/Cargo.toml"):
        package = tomllib.loads((root / manifest).read_text(encoding="utf-8"))["package"]
        inherits = package.get("version") == {"workspace": True}
        found.append((manifest, workspace_version(root) if inherits else package.get("version")))
    pyproject = tomllib.loads((root / "bindings-python/pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    # maturin takes a dynamic version from the crate.
    found.append(("bindings-python/pyproject.toml", workspace_version(root) if "version" in project.get("dynamic", []) else project.get("version")))

    wheels = sorted((root / "dist").glob("fundcore-*.whl"))
    sdists = sorted((root / "dist").glob("fundcore-*.tar.gz"))
    if not wheels or not sdists:
        found.append(("dist/ (run make dist)", None))
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            text = archive.read(metadata).decode("utf-8")
        found.append((f"dist/{wheel.name} METADATA", _field(text, "Version")))
    for sdist in sdists:
        found.append((f"dist/{sdist.name}", sdist.name.removeprefix("fundcore-").removesuffix(".tar.gz")))

    try:
        out = subprocess.run(
            [str(python), "-c", "import fundcore; print(fundcore.__version__)"],
            capture_output=True, text=True, check=True, cwd="/",
        ).stdout.strip()
        found.append((f"fundcore.__version__ ({python})", out))
    except (OSError, subprocess.CalledProcessError):
        found.append((f"fundcore.__version__ ({python}; run make python-dev)", None))

    pom = ET.parse(root / "bindings-mobile/jvm/pom.xml").getroot()
    found.append(("bindings-mobile/jvm/pom.xml", pom.findtext("m:version", namespaces=POM_NS)))

    swift = (root / "bindings-mobile/apple/Package.swift").read_text(encoding="utf-8")
    url = re.search(r'url:\s*"[^"]*/v(\d+\.\d+\.\d+[^/"]*)/', swift)
    found.append(("bindings-mobile/apple/Package.swift (release URL)", url.group(1) if url else None))

    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    entry = re.search(r"^## \[(\d+\.\d+\.\d+[^\]]*)\]", changelog, re.M)
    found.append(("CHANGELOG.md (newest entry)", entry.group(1) if entry else None))
    return found


def _field(metadata: str, name: str) -> str | None:
    match = re.search(rf"^{name}: (.+)$", metadata, re.M)
    return match.group(1).strip() if match else None


def readme_accepts(root: Path, version: str) -> str | None:
    """The problem with core/README.md's dependency line, if any."""
    text = (root / "core/README.md").read_text(encoding="utf-8")
    match = re.search(r'^fundcore = \{ version = "([^"]+)"', text, re.M)
    if not match:
        return "core/README.md shows no `fundcore = { version = ... }` dependency"
    wanted = match.group(1)
    # A caret requirement "0.1" accepts 0.1.x; "1.2" accepts 1.x from 1.2.
    major, minor, *_ = version.split(".")
    parts = wanted.split(".")
    if major == "0":
        ok = parts[:2] == [major, minor]
    else:
        ok = parts[0] == major and int(parts[1] if len(parts) > 1 else 0) <= int(minor)
    return None if ok else f'core/README.md asks for fundcore "{wanted}", which {version} does not meet'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--python", type=Path, default=None)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    python = (args.python or root / ".venv/bin/python").absolute()
    version = workspace_version(root)
    problems = [f"{where}: {found or 'no version'}, not {version}" for where, found in versions(root, python) if found != version]
    if (problem := readme_accepts(root, version)) is not None:
        problems.append(problem)
    for problem in problems:
        print(f"check_versions: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_versions: every artifact is {version}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
