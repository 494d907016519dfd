"""README.md's commands and Python examples run as printed.

- every ``python -m cli COMMAND …`` line names a real command, and each of its flags is one that
  command accepts (read from its ``--help``);
- every ``python app.py …`` flag is one the app accepts;
- every name a Python example imports from the project exists there;
- the Python examples that use only the offline ``tiny-random`` model run to the end.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PROJECT = {"app", "ui", "cli", "uq", "judge", "store", "backends", "core"}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _command_lines(prefix: str) -> list[str]:
    lines = []
    for block in _blocks("bash"):
        joined = block.replace("\\\n", " ")
        lines += [ln.strip() for ln in joined.splitlines() if ln.strip().startswith(prefix)]
    return lines


def _help_of(main, argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(argv)
    return out.getvalue()


def _flags(tokens: list[str]) -> list[str]:
    return [t.split("=")[0] for t in tokens if t.startswith("--")]


CLI_LINES = _command_lines("python -m cli")


def test_the_readme_shows_every_command():
    from cli.__main__ import COMMANDS

    shown = {shlex.split(line)[3] for line in CLI_LINES}
    assert shown == set(COMMANDS), set(COMMANDS) ^ shown


@pytest.mark.parametrize("line", CLI_LINES)
def test_cli_lines_use_real_commands_and_flags(line):
    from cli.__main__ import COMMANDS

    tokens = shlex.split(line.split(">")[0].split("|")[0])
    command, rest = tokens[3], tokens[4:]
    assert command in COMMANDS, line
    module = importlib.import_module(COMMANDS[command][0])
    sub = [rest[0]] if rest and not rest[0].startswith("-") and command == "cip" else []
    help_text = _help_of(module.main, [*sub, "--help"])
    for flag in _flags(rest):
        assert re.search(rf"{re.escape(flag)}\b", help_text), f"{flag} not accepted: {line}"


@pytest.mark.parametrize("line", _command_lines("python app.py"))
def test_app_lines_use_real_flags(line):
    import app

    help_text = _help_of(app.parse_args, ["--help"])
    for flag in _flags(shlex.split(line)[2:]):
        assert flag in help_text, f"{flag} not accepted: {line}"


PY_BLOCKS = _blocks("python")


def test_the_readme_has_python_examples():
    assert len(PY_BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(PY_BLOCKS)))
def test_python_examples_import_what_exists(index):
    import ast

    for node in ast.walk(ast.parse(PY_BLOCKS[index])):
        if isinstance(node, ast.ImportFrom) and node.module.split(".")[0] in PROJECT:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"


OFFLINE = [i for i, b in enumerate(PY_BLOCKS) if "Qwen/" not in b]


@pytest.mark.slow
@pytest.mark.parametrize("index", OFFLINE)
def test_offline_python_examples_run(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = PY_BLOCKS[index].replace("/tmp/", f"{tmp_path}/")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(source, f"README.md python example {index}", "exec"), {"__name__": "readme"})


def test_every_app_flag_is_in_the_configuration_table():
    import app

    help_text = _help_of(app.parse_args, ["--help"])
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", help_text)) - {"--help"}
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = sorted(f for f in flags if f"`{f}`" not in section)
    assert not missing, f"app.py flags missing from the README's Configuration table: {missing}"
