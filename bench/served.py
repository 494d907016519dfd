"""The OpenAI-compatible client, serial against concurrent, on our own server.

Our OpenAI-protocol server (``backends.serve_openai``) runs on 127.0.0.1, backed by the tiny
model, with an injected per-request latency standing for a GPU server's queue and network. The
workload is a dataset evaluation: the harness (``uq.evaluation.harness.run_evaluation``, with
as many questions in flight as the client's concurrency) over Q questions, N sampled answers
each, with semantic entropy (meanings compared by their normalised text, so the entailment model
costs nothing here), then the 100-point judge's candidate scores (``score`` over the score
strings "1" … "100" after a grading prompt, one request each). Both clients run it in the
same process, one after the other; the script checks they produced identical records and
prints the ratio. Then the 100-point judge grades the judged questions' first answers twice:
exactly (the server echoes prompt log-probabilities) and from the top 20 at the score token (a
second server refusing echo), and the RESULT line gives how often the two modes' argmax scores
agree and their mean |Δ expected score|, over the items both could score.

    python bench/served.py                   # 200 questions, N = 10, 50 ms, concurrency 16
    python bench/served.py --quick           # 20 questions, judge on 5 of them
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvicorn  # noqa: E402

from backends.openai_compat import OpenAICompatLM  # noqa: E402
from backends.registry import BackendConfig, Backends  # noqa: E402
from backends.serve_openai import create_app  # noqa: E402
from judge.config import JudgeConfig  # noqa: E402
from judge.grading import grade_batch  # noqa: E402
from tests.helpers import free_port  # noqa: E402
from uq.evaluation.datasets import EvalItem  # noqa: E402
from uq.evaluation.harness import EvalSettings, run_evaluation  # noqa: E402
from uq.semantic.entailment import NLIEntailment  # noqa: E402


class SameTextNLI:
    """Entailment iff the two answers' last lines are the same text, case and spaces aside."""

    model_id = "same-text"

    def probs(self, pairs):
        def norm(text):
            return " ".join(text.splitlines()[-1:]).lower().split()

        return [[0.0, 0.0, 1.0] if norm(a) == norm(b) else [0.0, 1.0, 0.0] for a, b in pairs]


def serve(
    latency_s: float, echo: bool = True, model: str = "tiny-random"
) -> tuple[str, uvicorn.Server]:
    lm = Backends(BackendConfig(model=model)).generator()
    port = free_port()
    config = uvicorn.Config(
        create_app(lm, model_name="tiny-random", latency_s=latency_s, echo=echo),
        host="127.0.0.1", port=port, log_level="warning",
    )  # fmt: skip
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/v1", server


def workload(lm: OpenAICompatLM, questions: list[str], n: int, judged: int) -> tuple[dict, int]:
    """(records, requests sent): the harness over every question (N samples, semantic entropy),
    then the judge's scores of the first ``judged`` questions' reference answer."""
    sent = [0]
    lm._client.event_hooks = {"request": [lambda request: sent.__setitem__(0, sent[0] + 1)]}
    items = [EvalItem(f"q{i}", q, [str(2 * i)]) for i, q in enumerate(questions)]
    settings = EvalSettings(
        n=n, max_new_tokens=8, seed=0, n_boot=10, chat=False,
        measures=["semantic_entropy", "discrete_semantic_entropy"],
    )  # fmt: skip
    result = run_evaluation(items, lm, NLIEntailment(SameTextNLI()), settings)
    scores = []
    for q, row in zip(questions[:judged], result.rows, strict=False):
        prompt = f"Question: {q}\nAnswer: {row['answer']}\nScore (1-100): "
        scores.append([s.total_logprob for s in lm.score(prompt, [str(k) for k in range(1, 101)])])
    records = {
        "rows": [(r["samples"], r["answer"], r["measures"]) for r in result.rows],
        "scores": [[round(x, 6) for x in row] for row in scores],
    }
    return records, sent[0]


JUDGE_QUESTIONS = [
    ("What is the capital of France?", "Paris."),
    ("What is the capital of France?", "Berlin."),
    ("How many legs does a spider have?", "Eight."),
    ("Who wrote Hamlet?", "Charles Dickens wrote it in 1990."),
    ("What is 2 + 2?", "4"),
]


def judge_agreement(exact_url: str, truncated_url: str, items, concurrency: int) -> dict:
    """The 100-point judge on ``items`` in both modes: the share of identical argmax scores and
    the mean |Δ expectation| over the items both scored."""
    config = JudgeConfig(scale=100, max_new_tokens=24)
    modes = {}
    for label, url in (("exact", exact_url), ("truncated", truncated_url)):
        lm = OpenAICompatLM(url, "tiny-random", concurrency=concurrency)
        modes[label] = grade_batch(lm, items, config)
    both = [
        (e, t)
        for e, t in zip(modes["exact"], modes["truncated"], strict=True)
        if e.summary is not None and t.summary is not None
    ]
    assert all(not e.truncated for e in modes["exact"]) and all(t.truncated for _, t in both)
    agree = sum(e.score("argmax") == t.score("argmax") for e, t in both)
    delta = [abs(e.score("expectation") - t.score("expectation")) for e, t in both]
    return {
        "judge_compared": len(both),
        "judge_items": len(items),
        "judge_argmax_agree": agree / len(both) if both else math.nan,
        "judge_mean_abs_delta": sum(delta) / len(delta) if delta else math.nan,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--judged", type=int, default=20, help="questions the 100-point judge scores")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--judge-model", default="tiny-random", help="model of the judge agreement")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.questions, args.judged = 20, 5
    url, server = serve(args.latency_ms / 1000)
    questions = [f"Question number {i}: what is {i} plus {i}?" for i in range(args.questions)]
    timings, outputs = {}, {}
    for label, concurrency in (("serial", 1), ("concurrent", args.concurrency)):
        lm = OpenAICompatLM(url, "tiny-random", concurrency=concurrency)
        started = time.perf_counter()
        outputs[label], requests = workload(lm, questions, args.n, args.judged)
        timings[label] = time.perf_counter() - started
        print(f"{label:<10} concurrency {concurrency:>3}: {requests} requests in "
              f"{timings[label]:.2f} s ({requests / timings[label]:.1f} requests/s)", flush=True)  # fmt: skip
    # A random model never writes "[score]", so the top-20 mode could score nothing: the
    # agreement is measured on --judge-model (e.g. smollm2-135m, the embedded real model).
    exact_url, exact = serve(args.latency_ms / 1000, model=args.judge_model)
    plain_url, plain = serve(args.latency_ms / 1000, echo=False, model=args.judge_model)
    items = [(JUDGE_QUESTIONS[i % len(JUDGE_QUESTIONS)]) for i in range(args.judged)]
    agreement = judge_agreement(exact_url, plain_url, items, args.concurrency)
    server.should_exit = exact.should_exit = plain.should_exit = True
    identical = outputs["serial"] == outputs["concurrent"]
    speedup = timings["serial"] / timings["concurrent"]
    print(json.dumps({"latency_ms": args.latency_ms, "questions": args.questions, "n": args.n,
                      "judged": args.judged, "identical": identical, **agreement}))  # fmt: skip
    print(f"RESULT speedup={speedup:.2f} requests_per_s={requests / timings['concurrent']:.1f} "
          f"identical={identical} judge_compared={agreement['judge_compared']} "
          f"judge_argmax_agree={agreement['judge_argmax_agree']:.3f} "
          f"judge_mean_abs_delta={agreement['judge_mean_abs_delta']:.3f}")  # fmt: skip
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
