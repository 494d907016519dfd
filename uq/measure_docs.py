"""The README's measure lists, rendered from the measure tables.

Each family's list (semantic, inv, and the judge's score methods) sits in README.md between
``<!-- measures:NAME -->`` and ``<!-- /measures:NAME -->``; ``tests/test_docs.py`` fails when
it differs from the table.
After adding a measure, regenerate them::

    python -m uq.measure_docs --write README.md   # rewrite the lists in place
    python -m uq.measure_docs --check README.md   # exit status 1 when they are stale
    python -m uq.measure_docs                     # print every list
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judge import reliability
from judge import scores as judge
from uq.inv import measures as inv
from uq.semantic import measures as semantic


@dataclass(frozen=True)
class MeasureFamily:
    """One measure table and what its list says: ``intro`` (one line above the list) and
    ``needs`` (the note for each statistic a measure may need)."""

    table: Sequence[Any]
    needs: dict[str, str]
    intro: str


# A new family's table joins with one entry here (and one marker pair in README.md).
FAMILIES: dict[str, MeasureFamily] = {
    "semantic": MeasureFamily(
        semantic.MEASURES,
        semantic.MISSING_NOTES,
        "N is the number of sampled answers; every measure is higher = more uncertain.",
    ),
    "inv": MeasureFamily(
        inv.MEASURES,
        inv.MISSING_NOTES,
        "n+1 inputs (the question and n perturbations), r answers each; nats.",
    ),
}


def range_text(measure: Any) -> str:
    """The range a measure's values lie in, e.g. "0 … log N", "≥ 1", "unbounded"."""
    lower = None if measure.lower is None else f"{measure.lower:g}"
    upper = None if measure.upper is None else measure.upper.text
    if lower is None and upper is None:
        return "unbounded"
    if upper is None:
        return f"≥ {lower}"
    if lower is None:
        return f"≤ {upper}"
    return f"{lower} … {upper}"


def measure_line(measure: Any, needs: dict[str, str]) -> str:
    """One Markdown list item: label, key, range, direction, needs, explanation."""
    facts = [f"`{measure.key}`", range_text(measure)]
    if not measure.higher_is_uncertain:
        facts.append("a confidence: higher = more certain")
    if measure.needs:
        notes = [needs[n].removeprefix("needs ") for n in sorted(measure.needs)]
        facts.append("needs " + " and ".join(notes))
    return f"- **{measure.label}** ({'; '.join(facts)}): {measure.explanation}"


def measure_list(name: str) -> str:
    """The Markdown list of family ``name`` (a key of :data:`FAMILIES`), in table order."""
    family = FAMILIES[name]
    return "\n".join([family.intro, ""] + [measure_line(m, family.needs) for m in family.table])


def block_text(name: str) -> str:
    """What README.md holds between family ``name``'s markers: a family's list, or for the
    judge's score methods their table (:func:`judge.scores.markdown_table`)."""
    if name == "judge":
        return judge.markdown_table()
    if name == "reliability":
        return reliability.markdown_table()
    return measure_list(name) + "\n"


# Every marker pair the README carries: the measure families, and the judge's score methods.
BLOCKS: tuple[str, ...] = (*FAMILIES, "judge", "reliability")


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- measures:{name} -->\n)(.*?)(<!-- /measures:{name} -->)", re.S)


def render_readme(text: str) -> str:
    """``text`` with every family's list between its markers regenerated from the table.

    Raises ValueError when a family's marker pair is missing."""
    for name in BLOCKS:
        pattern = _block(name)
        if not pattern.search(text):
            raise ValueError(f"no <!-- measures:{name} --> … <!-- /measures:{name} --> block")
        text = pattern.sub(lambda m, name=name: m[1] + block_text(name) + m[3], text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uq.measure_docs", description=__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", metavar="README", help="exit 1 when the lists are stale")
    action.add_argument("--write", metavar="README", help="regenerate the lists in place")
    args = parser.parse_args(argv)
    path = args.check or args.write
    if path is None:
        for name in BLOCKS:
            print(f"<!-- measures:{name} -->\n{block_text(name)}<!-- /measures:{name} -->\n")
        return 0
    text = Path(path).read_text(encoding="utf-8")
    try:
        fresh = render_readme(text)
    except ValueError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    if args.write:
        Path(path).write_text(fresh, encoding="utf-8")
        return 0
    if fresh != text:
        print(f"{path}: the measure lists differ from the tables; run "
              f"python -m uq.measure_docs --write {path}", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
