#!/usr/bin/env python3
"""Checks what `make dist` left in dist/ before anyone installs or uploads it (`make dist-check`).

    target/dist-tools/bin/python bindings-python/scripts/check_dist.py dist

dist/ must hold exactly one wheel and one sdist of the crate's version. The wheel is the stable-ABI
one (cp310-abi3) for glibc 2.17 and later (manylinux_2_17_x86_64): its extension needs no glibc
symbol newer than 2.17 (objdump -T, read here) and auditwheel agrees; it uses only the stable ABI
of CPython 3.10 (abi3audit --strict); it ships the stubs and py.typed. The sdist holds every crate
the build needs (the core beside the binding) and a workspace that names only those. Both render
on PyPI (twine check --strict). The tools come from bindings-python/requirements-dist.txt, in the
venv of the interpreter running this script. Exits 1 with every problem found.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(sys.executable).parent
PLATFORM = "manylinux_2_17_x86_64"
MAX_GLIBC = (2, 17)
EXTENSION = "fundcore/_fundcore.abi3.so"
#: What an installed package needs from the wheel.
WHEEL_FILES = {EXTENSION, "fundcore/__init__.py", "fundcore/_fundcore.pyi", "fundcore/py.typed"}
#: What building the wheel needs from the sdist (paths under its top directory).
SDIST_FILES = {
    "pyproject.toml",
    "PKG-INFO",
    "Cargo.toml",
    "Cargo.lock",
    "core/Cargo.toml",
    "core/src/lib.rs",
    "bindings-python/Cargo.toml",
    "bindings-python/src/lib.rs",
    "python/fundcore/__init__.py",
    "python/fundcore/_fundcore.pyi",
    "python/fundcore/py.typed",
}

problems: list[str] = []


def problem(text: str) -> None:
    problems.append(text)
    print(f"dist-check: {text}", file=sys.stderr)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(arg) for arg in args], capture_output=True, text=True, check=False)


def crate_version() -> str:
    with (REPO / "Cargo.toml").open("rb") as file:
        version = tomllib.load(file)["workspace"]["package"]["version"]
    assert isinstance(version, str)
    return version


def glibc_versions(shared_object: Path) -> list[tuple[int, ...]]:
    """The GLIBC_x.y versions of the dynamic symbols the object needs."""
    out = run("objdump", "-T", shared_object)
    if out.returncode != 0:
        problem(f"objdump -T {shared_object.name} failed: {out.stderr.strip()}")
        return []
    found = {tuple(int(part) for part in v.split(".")) for v in re.findall(r"\bGLIBC_([0-9.]+)\b", out.stdout)}
    return sorted(found)


def check_wheel(wheel: Path, version: str) -> None:
    # fundcore-0.1.0-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
    name, wheel_version, python_tag, abi_tag, platforms = wheel.name.removesuffix(".whl").split("-")
    if (name, wheel_version, python_tag, abi_tag) != ("fundcore", version, "cp310", "abi3"):
        problem(f"{wheel.name}: not fundcore {version} for cp310-abi3")
    if PLATFORM not in platforms.split("."):
        problem(f"{wheel.name}: not tagged {PLATFORM}")

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        if missing := WHEEL_FILES - names:
            problem(f"{wheel.name}: lacks {sorted(missing)}")
        extensions = sorted(n for n in names if n.endswith(".so"))
        if extensions != [EXTENSION]:
            problem(f"{wheel.name}: extensions {extensions}, expected [{EXTENSION}]")
        info = f"fundcore-{version}.dist-info"
        tags = archive.read(f"{info}/WHEEL").decode().splitlines()
        if f"Tag: cp310-abi3-{PLATFORM}" not in tags:
            problem(f"{wheel.name}: WHEEL names no cp310-abi3-{PLATFORM} tag: {tags}")
        metadata = archive.read(f"{info}/METADATA").decode()
        if f"\nVersion: {version}\n" not in metadata or "\nRequires-Python: >=3.10\n" not in metadata:
            problem(f"{wheel.name}: METADATA does not say Version {version}, Requires-Python >=3.10")
        with tempfile.TemporaryDirectory() as tmp:
            if EXTENSION in names:
                extension = Path(archive.extract(EXTENSION, tmp))
                needed = glibc_versions(extension)
                print(f"dist-check: {EXTENSION} needs GLIBC {', '.join('.'.join(map(str, v)) for v in needed)}")
                if not needed:
                    problem(f"{EXTENSION}: no GLIBC symbol versions read (objdump output changed?)")
                elif needed[-1] > MAX_GLIBC:
                    problem(f"{EXTENSION} needs GLIBC_{'.'.join(map(str, needed[-1]))}, newer than 2.17")

    show = run(TOOLS / "auditwheel", "show", wheel)
    said = " ".join(show.stdout.split())
    if show.returncode != 0 or f'is consistent with the following platform tag: "{PLATFORM}"' not in said:
        problem(f"auditwheel show: not consistent with {PLATFORM}:\n{show.stdout}{show.stderr}")

    audit = run(TOOLS / "abi3audit", "--strict", "--report", wheel)
    try:
        [report] = json.loads(audit.stdout)["specs"].values()
        [result] = [entry["result"] for entry in report["wheel"]]
        abi3 = result["is_abi3"] and result["is_abi3_baseline_compatible"] and result["computed"] == "3.10"
    except (ValueError, KeyError, TypeError) as err:
        problem(f"abi3audit: unreadable report ({err!r}):\n{audit.stdout}{audit.stderr}")
    else:
        if audit.returncode != 0 or not abi3 or result["non_abi3_symbols"]:
            problem(f"abi3audit --strict: not stable ABI 3.10:\n{audit.stdout}{audit.stderr}")


def check_sdist(sdist: Path, version: str) -> None:
    top = f"fundcore-{version}"
    with tarfile.open(sdist) as archive:
        names = {name.removeprefix(f"{top}/") for name in archive.getnames() if name.startswith(f"{top}/")}
        if missing := SDIST_FILES - names:
            problem(f"{sdist.name}: lacks {sorted(missing)}")
            return
        manifest = archive.extractfile(f"{top}/Cargo.toml")
        assert manifest is not None
        members = tomllib.load(manifest)["workspace"]["members"]
    # A member without its manifest breaks every cargo command of the build.
    if absent := [member for member in members if f"{member}/Cargo.toml" not in names]:
        problem(f"{sdist.name}: the workspace names members it does not hold: {absent}")


def main() -> int:
    dist = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "dist")
    version = crate_version()
    wheels = sorted(dist.glob("fundcore-*.whl"))
    sdists = sorted(dist.glob("fundcore-*.tar.gz"))
    expected_sdist = f"fundcore-{version}.tar.gz"
    if [w.name.split("-")[1] for w in wheels] != [version] or [s.name for s in sdists] != [expected_sdist]:
        problem(f"{dist} holds {[p.name for p in wheels + sdists]}: expected one wheel and one sdist of {version}")
    for wheel in wheels:
        check_wheel(wheel, version)
    for sdist in sdists:
        check_sdist(sdist, version)
    if wheels or sdists:
        twine = run(TOOLS / "twine", "check", "--strict", *wheels, *sdists)
        if twine.returncode != 0:
            problem(f"twine check --strict:\n{twine.stdout}{twine.stderr}")
    if problems:
        print(f"dist-check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in wheels + sdists)
    print(f"dist-check: clean ({sizes})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
