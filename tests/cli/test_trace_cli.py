import json

from cli.common import run_cli
from cli.trace import main


def test_cli_prints_the_trace_as_json(tiny_lm_dir, capsys):
    code = run_cli(
        main, ["What is 2+2?", "--model", str(tiny_lm_dir), "--max-new-tokens", "6", "--json"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["generation"]["tokens"]) == out["summary"]["n_tokens"] > 0
    assert out["params"]["max_new_tokens"] == 6


def test_cli_user_errors_exit_2_without_traceback(tmp_path, capsys):
    assert run_cli(main, ["   ", "--model", "tiny-random"]) == 2
    assert "type a question" in capsys.readouterr().err
    assert run_cli(main, ["hi", "--model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "no such directory" in err and "Traceback" not in err
    assert run_cli(main, ["hi", "--temperature", "9", "--model", "tiny-random"]) == 2
