"""The README documents every measure: its measure lists are the ones the tables render
(Datasette's test_docs style). Regenerate with ``python -m uq.measure_docs --write README.md``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from uq.measure_docs import BLOCKS, FAMILIES, block_text, main, measure_list, render_readme

README = Path(__file__).resolve().parents[1] / "README.md"


def _listed(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- measures:{name} -->\n(.*?)\n<!-- /measures:{name} -->", text, re.S)
    assert found, f"README.md has no <!-- measures:{name} --> … <!-- /measures:{name} --> block"
    return found[1]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_readme_lists_every_measure_of_the_table(name):
    assert _listed(name) == measure_list(name), (
        f"README.md's {name} measure list differs from the table; run "
        "python -m uq.measure_docs --write README.md"
    )


@pytest.mark.parametrize("name", BLOCKS)
def test_every_block_is_what_its_table_renders(name):
    assert _listed(name) + "\n" == block_text(name), (
        f"README.md's {name} list differs from its table; run "
        "python -m uq.measure_docs --write README.md"
    )


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_key_appears_once_in_its_list(name):
    listed = _listed(name)
    for measure in FAMILIES[name].table:
        assert listed.count(f"(`{measure.key}`;") == 1, measure.key


def test_check_fails_on_a_stale_list_and_write_repairs_it(tmp_path, capsys):
    readme = tmp_path / "README.md"
    fresh = README.read_text(encoding="utf-8")
    first = next(iter(FAMILIES.values())).table[0]
    stale = fresh.replace(f"(`{first.key}`;", "(`renamed`;", 1)
    readme.write_text(stale, encoding="utf-8")
    assert main(["--check", str(readme)]) == 1
    assert "differ" in capsys.readouterr().err
    assert main(["--write", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == fresh
    assert main(["--check", str(readme)]) == 0


def test_a_missing_marker_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="measures:semantic"):
        render_readme("no markers here")
    readme = tmp_path / "README.md"
    readme.write_text("nothing", encoding="utf-8")
    assert main(["--check", str(readme)]) == 2
