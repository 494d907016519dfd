"""The OpenAI-compatible client, serial against concurrent, on our own server.

Our OpenAI-protocol server (``backends.serve_openai``) runs on 127.0.0.1, backed by the tiny
model, with an injected per-request latency standing for a GPU server's queue and network. The
workload is what a dataset evaluation sends: for each of Q questions, N sampled answers (one
request with ``n = N``) and the 100-point judge's candidate scores (``score`` over the score
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

from backends.base import SamplingParams  # noqa: E402
from backends.openai_compat import OpenAICompatLM  # noqa: E402
from backends.registry import BackendConfig, Backends  # noqa: E402
from backends.serve_openai import create_app  # noqa: E402
from judge.config import JudgeConfig  # noqa: E402
from judge.grading import grade_batch  # noqa: E402
from tests.helpers import free_port  # noqa: E402


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
    """(records, requests sent): every question's N samples, then the judge's scores of the
    first ``judged`` questions' first answer."""
    params = SamplingParams(n=n, temperature=1.0, max_new_tokens=8, seed=0)
    samples = lm.sample_batch(questions, params, chat=False)
    scores = []
    for q, answers in zip(questions[:judged], samples, strict=False):
        prompt = f"Question: {q}\nAnswer: {answers[0].text}\nScore (1-100): "
        scores.append([s.total_logprob for s in lm.score(prompt, [str(k) for k in range(1, 101)])])
    records = {
        "samples": [[(g.text, round(g.total_logprob, 6)) for g in row] for row in samples],
        "scores": [[round(x, 6) for x in row] for row in scores],
    }
    return records, len(questions) + 100 * judged


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
