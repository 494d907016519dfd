"""``python -m cli COMMAND …``: every Confidant command line, as subcommands of one program.

    python -m cli evaluate --data data/qa/trivia_small.jsonl --model tiny-random --out results/
    python -m cli inv-evaluate --data data/qa/trivia_small.jsonl --model tiny-random --out inv/
    python -m cli cip play --posterior oracle --hidden penguin
    python -m cli judge-report --items data/judge/reliability.jsonl --model tiny-random --out rel/
    python -m cli trace "What is the capital of Australia?" --model tiny-random
    python -m cli serve --model tiny-random --port 8000
    python -m cli serve-encoders --nli-model tiny-random-nli --port 8100

``python -m cli COMMAND --help`` lists a command's flags.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# command → (module, one-line description); modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "evaluate": ("cli.evaluate", "which measure predicts errors best on a dataset"),
    "inv-evaluate": ("cli.inv_evaluate", "Inv-Entropy over a dataset, with TSU"),
    "cip": ("cli.cip", "20 Questions with conformal information pursuit"),
    "judge-report": ("cli.judge_report", "how far an LLM judge can be trusted, as CSV + JSON"),
    "trace": ("cli.trace", "one answer's per-token entropy trace"),
    "serve": ("cli.serve", "serve a local model over the OpenAI protocol"),
    "serve-encoders": ("cli.serve_encoders", "serve an NLI model and an embedder over HTTP"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m cli COMMAND [flags]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "python -m cli COMMAND --help lists a command's flags."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from cli.common import run_cli

    module = importlib.import_module(COMMANDS[command][0])
    return run_cli(module.main, rest)


if __name__ == "__main__":
    sys.exit(main())
