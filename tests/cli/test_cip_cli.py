"""The C-IP command line: calibrate (stored, then reused), play, benchmark, exit code 2."""

from __future__ import annotations

import csv

import pytest

from cli.cip import main


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "cli.db")


def test_calibrate_then_reuse(db, capsys):
    args = ["calibrate", "--posterior", "oracle", "--n-cal", "20", "--max-length", "4", "--db", db]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "computed and stored" in err and "calibrating, history length: 4/4" in err
    assert out.splitlines()[0] == "k\ttau\tcoverage\tmean_set_size" and len(out.splitlines()) == 5
    assert main(args) == 0
    assert "reused the stored thresholds" in capsys.readouterr().err


def test_play_and_benchmark(db, tmp_path, capsys):
    common = ["--posterior", "oracle", "--n-cal", "20", "--max-length", "5", "--db", db]
    assert main(["play", *common, "--hidden", "owl", "--hypotheses", "posterior"]) == 0
    out = capsys.readouterr().out
    assert "final guess:" in out and len(out.splitlines()) <= 7
    table = tmp_path / "table.csv"
    argv = ["benchmark", *common, "--classes", "owl,frog", "--seeds", "0,1",
            "--both-hypotheses", "--out", str(table)]  # fmt: skip
    assert main(argv) == 0
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert [r["hypotheses"] for r in rows] == ["uniform", "posterior", "uniform", "posterior", ""]
    assert "Success rate" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["play", "--posterior", "oracle", "--hidden", "unicorn"], "unknown class"),
        (["calibrate", "--posterior", "oracle", "--class-set", "/no/such.csv"], "cannot read"),
        (["calibrate", "--posterior", "oracle", "--max-length", "500"], "more than"),
        (
            [
                "benchmark",
                "--posterior",
                "oracle",
                "--methods",
                "best",
                "--max-length",
                "2",
                "--n-cal",
                "5",
            ],
            "method must be",
        ),  # fmt: skip
    ],
)
def test_user_errors_exit_2(db, capsys, argv, message):
    assert main([*argv, "--db", db]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and message in err


def test_bad_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", "--alpha", "0.7"])
    assert exc.value.code == 2
    assert "alpha must be in (0, 0.5)" in capsys.readouterr().err
