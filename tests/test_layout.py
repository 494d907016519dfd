"""The house a newcomer finds: small library files, each package with a map of its modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("backends", "core", "uq", "judge", "store", "ui", "cli")
MAX_LINES = 400


def _library_files() -> list[Path]:
    return sorted(p for package in LIBRARY for p in (ROOT / package).rglob("*.py"))


def test_no_library_file_is_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _library_files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines (a file that grows past it holds two concerns): {long}"


def test_every_library_module_says_what_it_is_for():
    missing = [
        str(p.relative_to(ROOT))
        for p in _library_files()
        if p.name != "__init__.py" and not ast.get_docstring(ast.parse(p.read_text("utf-8")))
    ]
    assert not missing, missing


def test_every_package_maps_its_modules():
    """A package's docstring names each of its modules and subpackages, so one file tells a
    newcomer where things are."""
    inits = [ROOT / p / "__init__.py" for p in LIBRARY]
    inits += [i for i in sorted(ROOT.glob("*/*/__init__.py")) if i.parts[-3] in LIBRARY]
    assert len(inits) >= 14
    for init in inits:
        doc = ast.get_docstring(ast.parse(init.read_text("utf-8"))) or ""
        package = ".".join(init.parent.relative_to(ROOT).parts)
        parts = [m.stem for m in init.parent.glob("*.py") if m.name != "__init__.py"]
        parts += [d.name for d in init.parent.iterdir() if (d / "__init__.py").exists()]
        for name in sorted(parts):
            assert f"{package}.{name}" in doc, f"{init}: {name} not in its map"
