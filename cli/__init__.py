"""Every command line, as subcommands of one program: ``python -m cli COMMAND``.

- :mod:`cli.__main__`: the dispatcher and its list of commands;
- :mod:`cli.common`: the shared model flags and the error printer (exit code 2, no traceback);
- :mod:`cli.evaluate`: ``evaluate`` — the dataset evaluation harness;
- :mod:`cli.inv_evaluate`: ``inv-evaluate`` — Inv-Entropy over a dataset, with TSU;
- :mod:`cli.cip`: ``cip`` — 20 Questions with C-IP: calibrate, play, benchmark;
- :mod:`cli.judge_report`: ``judge-report`` — the judge reliability report as CSV + JSON;
- :mod:`cli.trace`: ``trace`` — one answer's per-token entropy trace;
- :mod:`cli.serve`: ``serve`` — a local model over the OpenAI protocol;
- :mod:`cli.serve_encoders`: ``serve-encoders`` — an NLI model and an embedder over HTTP.
"""
