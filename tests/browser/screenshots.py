"""Refresh the README's screenshots: run the browser flows with their screenshots written to
docs/: every tab's flow with the embedded real model (tests/browser/test_real_flows.py, which
also writes timings.json, the wall time of each main action).

    python tests/browser/screenshots.py              # the flows that write screenshots
    python tests/browser/screenshots.py -k semantic  # extra arguments go to pytest
"""


from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FLOWS = ["tests/browser/test_real_flows.py"]


def main(argv: list[str]) -> int:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    env = dict(os.environ, CONFIDANT_SCREENSHOTS=str(docs))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "browser"]
    command += [*FLOWS, *argv]
    done = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if done.returncode == 0:
        print(f"screenshots in {docs}:", ", ".join(sorted(p.name for p in docs.glob("*.png"))))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
