"""The dependency rule of the architecture: ``uq/`` and ``judge/`` never import ``ui/`` or
``store/`` (entry points such as ``python -m uq.evaluate`` wire the store inside ``main``), and
``store/`` needs no method package."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import importlib, json, pkgutil, sys
package = sys.argv[1]
pkg = importlib.import_module(package)
for info in pkgutil.iter_modules(pkg.__path__):
    importlib.import_module(f"{package}.{info.name}")
loaded = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps(loaded))
"""


def _top_level_packages_loaded_by(package: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, package],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_method_packages_import_neither_store_nor_ui():
    for package in ("uq", "judge"):
        loaded = _top_level_packages_loaded_by(package)
        assert "uq" in loaded or "judge" in loaded
        assert not {"store", "ui", "gradio"} & loaded, (package, {"store", "ui"} & loaded)


def test_store_imports_no_method_package():
    loaded = _top_level_packages_loaded_by("store")
    assert not {"uq", "judge", "ui"} & loaded


def test_every_module_is_probed():
    names = {info.name for info in pkgutil.iter_modules([str(ROOT / "uq")])}
    assert {"cip_cli", "evaluate", "inv_evaluate", "semantic_pipeline"} <= names
