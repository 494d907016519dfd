"""``python -m cli``: one program, one model-flag convention, one error printer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.__main__ import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]
# Every command line that loads models, by its argv prefix.
SUBCOMMANDS = [
    ["evaluate"],
    ["inv-evaluate"],
    ["cip", "calibrate"],
    ["cip", "play"],
    ["cip", "benchmark"],
    ["judge-report"],
    ["trace"],
    ["serve"],
]


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_python_m_cli_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "cli", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0
    assert set(COMMANDS) == {
        "evaluate", "inv-evaluate", "cip", "judge-report", "trace", "serve", "serve-encoders"
    }
    for command in COMMANDS:
        assert f"  {command} " in out.stdout


def test_an_unknown_command_exits_2(capsys):
    assert main(["evaluat"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown command 'evaluat'" in err and "commands:" in err
    out = subprocess.run(
        [sys.executable, "-m", "cli", "nope"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_every_subcommand_has_the_same_model_flags_and_default(capsys, monkeypatch):
    monkeypatch.setenv("CONFIDANT_MODEL", "some/model-from-env")
    monkeypatch.setenv("CONFIDANT_DEVICE", "cpu")
    covered = set()
    for argv in SUBCOMMANDS:
        text = " ".join(_help(argv, capsys).split())  # argparse wraps help lines
        covered.add(argv[0])
        assert "--model MODEL" in text and "(default: some/model-from-env;" in text, argv
        assert "--device DEVICE" in text, argv
        assert "--nli " not in text and "--nli]" not in text, argv
    # serve-encoders runs no generator: it has --nli-model and --embedding-model only.
    assert covered == set(COMMANDS) - {"serve-encoders"}
    for argv in (["evaluate"], ["inv-evaluate"]):
        text = _help(argv, capsys)
        assert "--nli-model" in text and "--embedding-model" in text
        assert "--openai-base-url" in text


def test_the_model_default_comes_from_the_app_config(capsys, monkeypatch):
    from backends.registry import BackendConfig

    monkeypatch.delenv("CONFIDANT_MODEL", raising=False)
    default = BackendConfig.from_env().model
    for argv in SUBCOMMANDS:
        assert f"(default: {default};" in " ".join(_help(argv, capsys).split()), argv


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "--data", "/no/such.jsonl", "--out", "r"], "no dataset file"),
        (["inv-evaluate", "--data", "/no/such.jsonl", "--out", "r", "--r", "0"], "replicates"),
        (["cip", "calibrate", "--posterior", "oracle", "--max-length", "500"], "more than"),
        (["trace", "   ", "--model", "tiny-random"], "type a question"),
        (["serve", "--model", "/no/such/model-dir"], "no such directory"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_a_user_error_in_any_subcommand_exits_2_without_traceback(argv, message, capsys, tmp_path):
    if argv[0] == "cip":
        argv = [*argv, "--db", str(tmp_path / "c.db")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["trace", "hi", "--seed", str(2**64)],
        ["evaluate", "--seed", "-1"],
        ["inv-evaluate", "--seed", "1e400"],
        ["cip", "play", "--seed", str(2**32)],
        ["cip", "calibrate", "--calibration-seed", "-1"],
        ["cip", "benchmark", "--seeds", f"0,{2**64}"],
    ],
)
def test_a_seed_outside_32_bits_is_a_clear_error_naming_the_flag(argv):
    out = subprocess.run(
        [sys.executable, "-m", "cli", *argv, "--model", "tiny-random"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "Seed must be a whole number from 0 to 4294967295" in out.stderr
    assert "Traceback" not in out.stderr and "Overflow" not in out.stderr
    flag = next(a for a in argv if a.startswith("--"))
    assert f"argument {flag}:" in out.stderr
