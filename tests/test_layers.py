"""The dependency rule of the architecture, read statically from the source.

    app.py, ui, cli  ──►  uq, judge, store  ──►  backends, core

Every import counts: at module level, inside functions, under ``TYPE_CHECKING``, and
``importlib.import_module("…")`` with a literal name. ``uq`` and ``judge`` never reach ``store``,
``ui`` or ``cli``; ``store`` needs no method package; ``backends`` and ``core`` stand alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"app", "ui", "cli", "uq", "judge", "store", "backends", "core"}

# package → the project packages it may import (itself included)
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "backends": {"backends", "core"},
    "uq": {"uq", "judge", "backends", "core"},
    "judge": {"judge", "uq", "backends", "core"},
    "store": {"store", "backends", "core"},
    "ui": PROJECT - {"app"},
    "cli": PROJECT - {"app", "ui"},
    "app": PROJECT,
}


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in ``source``, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in {"__import__", "import_module"})
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def violations(package: str, source: str, name: str = "<source>") -> list[str]:
    allowed = ALLOWED[package]
    return [
        f"{name}:{line}: {package} imports {target}"
        for line, target in imported_packages(source)
        if target in PROJECT and target not in allowed
    ]


def _files() -> list[tuple[str, Path]]:
    out = [("app", ROOT / "app.py")]
    for package in sorted(ALLOWED.keys() - {"app"}):
        out += [(package, p) for p in sorted((ROOT / package).rglob("*.py"))]
    return out


def test_every_import_follows_the_layer_rule():
    broken = []
    for package, path in _files():
        broken += violations(package, path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not broken, "\n".join(broken)


def test_every_package_is_read():
    packages = {package for package, _ in _files()}
    assert packages == set(ALLOWED)
    assert len(_files()) > 60


def test_a_planted_violation_is_found_wherever_it_hides():
    planted = {
        "uq": "def f():\n    from store.db import Store\n",
        "judge": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ui.app\n",
        "store": "import importlib\nm = importlib.import_module('uq.trace')\n",
        "backends": "def f():\n    import judge.scores\n",
        "core": "from backends.base import Generation\n",
        "cli": "def f():\n    __import__('ui.app')\n",
    }
    for package, source in planted.items():
        assert violations(package, source), package
    assert not violations("ui", "from store.db import Store\nimport uq.trace\n")
    assert not violations("uq", "import numpy\nfrom core.errors import ConfidantError\n")
