"""The validation study: do the uncertainty measures predict the embedded model's errors on
real trivia questions that nobody on this project wrote?

Questions come from two PyPI wheels fetched at run time (:mod:`validate_data`; never
committed): Red-DiscordBot's general-knowledge trivia lists (GPLv3) and FanOutQA's dev
sub-questions (CC-BY-SA-4.0) for the main study, Red-DiscordBot's ``worldcapitals`` and
``uscapitals`` as a held-out check. Each set is run through the project's own command line
(``python -m cli evaluate``: the harness with its defaults — contains-a-gold-answer
correctness, a 5-shot answer prompt — and its SQLite cache, so an interrupted run resumes)
with the embedded SmolLM2-135M-Instruct, N = 10 samples and embedding entailment.

The report then gives, for every measure, AUROC and normalised PRR with 95 % bootstrap
intervals against the default correctness (:func:`uq.evaluation.metrics.evaluation_metrics`),
the paired bootstrap difference of semantic entropy and naive (length-normalised) entropy, and
how the correctness methods (contains, SQuAD F1 ≥ 0.5, exact match, ROUGE-L ≥ 0.3) agree with
each other and with the hand labels in ``data/validation/hand_labels.jsonl`` (agreement and
Cohen's kappa).

    python bench/validate.py                 # fetch, run (or resume), report
    python bench/validate.py --report-only   # the report from finished runs
    python bench/validate.py --label-sheet   # print the 100 answers to label by hand

Torch runs on one thread: on the shared 2-core machine two OpenMP threads fighting other
processes made each question 3-5 times slower. Results go to ``~/.cache/confidant/validation``
(``<set>/evaluation.json`` from the harness, ``summary.json`` and ``summary.md`` from here).
Last line: ``RESULT accuracy=<a> se_auroc=<x> naive_auroc=<y> best=<measure>``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import validate_data  # noqa: E402

OUT = Path.home() / ".cache" / "confidant" / "validation"
HAND_LABELS = ROOT / "data" / "validation" / "hand_labels.jsonl"
SETS = ("main", "held_out")
STUDY_FLAGS = (
    "--model", "smollm2-135m", "--entailment", "embedding",
    "--n", "10", "--max-new-tokens", "24",
)  # fmt: skip
# (name, correctness method, threshold): the harness's methods with their default thresholds.
CORRECTNESS = (
    ("contains", "contains", 0.5),
    ("squad_f1≥0.5", "squad_f1", 0.5),
    ("exact_match", "exact_match", 1.0),
    ("rouge_l≥0.3", "rouge_l", 0.3),
)
SEMANTIC, NAIVE = "semantic_entropy", "ln_predictive_entropy"
N_LABELS, LABEL_SEED = 100, 17


def command(name: str, out: Path = OUT) -> list[str]:
    """The ``python -m cli evaluate`` arguments that run one set of the study."""
    data, db = out / f"{name}.jsonl", out / "cache.db"
    return ["--data", str(data), *STUDY_FLAGS, "--db", str(db), "--out", str(out / name)]


def run(name: str, out: Path = OUT) -> dict[str, Any]:
    """Run (or resume from the cache) one set through the CLI; its evaluation.json."""
    from cli.evaluate import main

    if main(command(name, out)) != 0:
        raise SystemExit(f"the {name} run failed")
    return json.loads((out / name / "evaluation.json").read_text(encoding="utf-8"))


def cached_result(name: str, params_hash: str, out: Path = OUT) -> dict[str, Any]:
    """The rows of set ``name`` that the cache holds under ``params_hash``, in dataset order:
    a run that is still going, or one stopped for time, read without a model."""
    from store.db import Store
    from store.eval_cache import EvalCache
    from uq.evaluation.datasets import dataset_hash, load_dataset

    items = load_dataset(out / f"{name}.jsonl")
    cache, d_hash = EvalCache(Store(out / "cache.db")), dataset_hash(items)
    rows = [r for item in items if (r := cache.get(d_hash, item.id, params_hash)) is not None]
    if not rows:
        raise SystemExit(f"the cache holds no {name} rows under {params_hash}")
    return {"rows": rows, "params": {"params_hash": params_hash, "partial_of": len(items)}}


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def labels(rows: list[dict[str, Any]], method: str, threshold: float) -> np.ndarray:
    """0/1 correctness of each row's reference answer (an empty answer is wrong, as in the
    harness) and the scores, as a (2, n) array."""
    from uq.evaluation.correctness import correctness_score

    scores = [correctness_score(r["answer"], r["golds"], method) if r["answer"] else 0.0
              for r in rows]  # fmt: skip
    s = np.array(scores, dtype=float)
    return np.vstack([(s >= threshold).astype(float), s])


def measure_table(
    rows: list[dict[str, Any]], method: str, threshold: float, n_boot: int = 1000
) -> list[dict[str, Any]]:
    """Per measure: n, AUROC and normalised PRR with 95 % bootstrap intervals against the
    correctness ``method``, best AUROC first."""
    from uq.evaluation.metrics import evaluation_metrics

    c, q = labels(rows, method, threshold)
    names = list(dict.fromkeys(m for r in rows for m in r["measures"]))
    table = []
    for name in names:
        keep = [i for i, r in enumerate(rows) if r["measures"].get(name) is not None]
        if not keep:
            continue
        u = np.array([rows[i]["measures"][name] for i in keep], dtype=float)
        m = evaluation_metrics(u, c[keep], q[keep], n_boot=n_boot, seed=41)
        row: dict[str, Any] = {"measure": name, "n": len(keep)}
        for key, label in (("auroc", "auroc"), ("prr_normalised", "prr")):
            iv = m.get(key)
            row[label] = None if iv is None else [iv.estimate, iv.low, iv.high]
        table.append(row)
    return sorted(table, key=lambda r: -(r["auroc"][0] if r["auroc"] else -1))


def paired_difference(
    rows: list[dict[str, Any]], a: str, b: str, c: np.ndarray, n_boot: int = 1000
) -> list[float] | None:
    """AUROC(a) − AUROC(b) on the same questions with a paired 95 % bootstrap interval."""
    from uq.evaluation.metrics import UndefinedMetricError, auroc, bootstrap_ci

    keep = [i for i, r in enumerate(rows) if None not in (r["measures"].get(a),
                                                          r["measures"].get(b))]  # fmt: skip
    if not keep:
        return None
    ua = np.array([rows[i]["measures"][a] for i in keep], dtype=float)
    ub = np.array([rows[i]["measures"][b] for i in keep], dtype=float)
    try:
        iv = bootstrap_ci(lambda x, y, z: auroc(x, z) - auroc(y, z), ua, ub, c[keep],
                          n_boot=n_boot, seed=41)  # fmt: skip
    except UndefinedMetricError:
        return None
    return [iv.estimate, iv.low, iv.high]


def agreement(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Share of equal labels and Cohen's kappa (sklearn; 0 when both raters are constant and
    equal would be undefined, reported as NaN)."""
    from sklearn.metrics import cohen_kappa_score

    x, y = np.asarray(x, dtype=int), np.asarray(y, dtype=int)
    agree = float(np.mean(x == y))
    if len(set(x) | set(y)) < 2:
        return {"agreement": agree, "kappa": float("nan")}
    return {"agreement": agree, "kappa": float(cohen_kappa_score(x, y))}


def label_sample(rows: list[dict[str, Any]], k: int = N_LABELS) -> list[dict[str, Any]]:
    """The ``k`` rows read by hand: drawn with ``random.Random(LABEL_SEED)`` from the rows
    sorted by id."""
    ordered = sorted(rows, key=lambda r: r["id"])
    return random.Random(LABEL_SEED).sample(ordered, min(k, len(ordered)))


def read_hand_labels(path: Path = HAND_LABELS) -> dict[str, int]:
    """``{id: 0/1}`` from the hand-label file (one ``{"id", "label"}`` object a line)."""
    out: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            out[str(obj["id"])] = int(obj["label"])
    return out


def correctness_agreement(
    rows: list[dict[str, Any]], hand: dict[str, int] | None
) -> dict[str, Any]:
    """Pairwise agreement and kappa of the correctness methods on every row, and of each
    method with the hand labels on the labelled rows."""
    lab = {name: labels(rows, m, t)[0] for name, m, t in CORRECTNESS}
    out: dict[str, Any] = {
        "n": len(rows),
        "accuracy": {name: float(v.mean()) for name, v in lab.items()},
        "pairs": {f"{a} vs {b}": agreement(lab[a], lab[b]) for a, b in combinations(lab, 2)},
    }
    if hand:
        idx = [i for i, r in enumerate(rows) if r["id"] in hand]
        h = np.array([hand[rows[i]["id"]] for i in idx])
        out["hand"] = {
            "n": len(idx),
            "accuracy": float(h.mean()) if idx else None,
            "methods": {name: agreement(v[idx], h) for name, v in lab.items()},
        }
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _iv(v: list[float] | None) -> str:
    return "—" if v is None else f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def markdown(summary: dict[str, Any]) -> str:
    """The README tables."""
    lines: list[str] = []
    for name, s in summary["sets"].items():
        lines += [
            f"**{name}** — {s['n']} questions ({s['sources']}), accuracy {s['accuracy']:.3f} "
            f"(contains), mean answer length {s['mean_words']:.1f} words",
            "",
            "| measure | AUROC [95 % CI] | PRR normalised [95 % CI] |",
            "|---|---|---|",
        ]
        lines += [f"| `{r['measure']}` | {_iv(r['auroc'])} | {_iv(r['prr'])} |"
                  for r in s["table"]]  # fmt: skip
        diff = s.get("se_minus_naive")
        lines += ["", f"AUROC({SEMANTIC}) − AUROC({NAIVE}), paired bootstrap: {_iv(diff)}", ""]
    ag = summary.get("agreement")
    if ag:
        lines += [f"Correctness methods on the {ag['n']} main-study answers:", "",
                  "| pair | agreement | Cohen's κ |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {p} | {v['agreement']:.3f} | {v['kappa']:.3f} |"
                  for p, v in ag["pairs"].items()]  # fmt: skip
        hand = ag.get("hand")
        if hand:
            lines += ["", f"Against {hand['n']} answers labelled by hand "
                      f"(hand accuracy {hand['accuracy']:.3f}):", "",
                      "| method | accuracy it gives | agreement | Cohen's κ |", "|---|---|---|---|"]  # fmt: skip
            lines += [f"| {m} | {ag['accuracy'][m]:.3f} | {v['agreement']:.3f} | "
                      f"{v['kappa']:.3f} |" for m, v in hand["methods"].items()]  # fmt: skip
    return "\n".join(lines) + "\n"


def with_length(rows: list[dict[str, Any]]) -> int:
    """Give rows cached before the length baseline existed its character form,
    ``answer_length_chars`` = len(stripped reference answer), exactly the measure's definition
    (the token form needs the generated tokens, which a row does not keep); how many got it."""
    added = 0
    for r in rows:
        if "answer_length_chars" not in r["measures"]:
            r["measures"]["answer_length_chars"] = float(len(r["answer"].strip()))
            added += 1
    return added


def summarise(results: dict[str, dict[str, Any]], n_boot: int = 1000) -> dict[str, Any]:
    """Tables for every finished set, the correctness agreement on the main set."""
    summary: dict[str, Any] = {"sets": {}}
    for name, result in results.items():
        rows = result["rows"]
        length_added = with_length(rows)
        c = labels(rows, "contains", 0.5)[0]
        sources = sorted({r["id"].split(":")[0] for r in rows})
        summary["sets"][name] = {
            "n": len(rows),
            "sources": ", ".join(sources),
            "params_hash": result["params"].get("params_hash"),
            "correctness": result["params"].get("correctness_method"),
            "few_shot": result["params"].get("few_shot"),
            "accuracy": float(c.mean()),
            "length_chars_added": length_added,
            "mean_words": float(np.mean([len(r["answer"].split()) for r in rows])),
            "table": measure_table(rows, "contains", 0.5, n_boot),
            "se_minus_naive": paired_difference(rows, SEMANTIC, NAIVE, c, n_boot),
        }
    if "main" in results:
        hand = read_hand_labels() if HAND_LABELS.is_file() else None
        summary["agreement"] = correctness_agreement(results["main"]["rows"], hand)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report-only", action="store_true", help="do not run; read the results")
    ap.add_argument("--label-sheet", action="store_true", help="print the answers to label")
    ap.add_argument("--sets", default=",".join(SETS), help="main,held_out")
    ap.add_argument(
        "--cached",
        action="append",
        default=[],
        metavar="LABEL=SET:HASH",
        help="also report the rows of SET cached under parameters hash HASH (a run stopped "
        "for time), as LABEL",
    )
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args(argv)
    names = [s for s in args.sets.split(",") if s]
    results: dict[str, dict[str, Any]] = {}
    if args.report_only or args.label_sheet:
        for name in names:
            path = OUT / name / "evaluation.json"
            if path.is_file():
                results[name] = json.loads(path.read_text(encoding="utf-8"))
    else:
        import torch

        torch.set_num_threads(1)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        for name, items in validate_data.study_sets().items():
            validate_data.write_jsonl(items, OUT / f"{name}.jsonl")
        results = {name: run(name) for name in names}
    for spec in args.cached:
        label, _, rest = spec.partition("=")
        set_name, _, p_hash = rest.partition(":")
        results[label] = cached_result(set_name, p_hash)
    if args.label_sheet:
        for r in label_sample(results["main"]["rows"]):
            print(json.dumps({k: r[k] for k in ("id", "question", "golds", "answer")},
                             ensure_ascii=False))  # fmt: skip
        return 0
    summary = summarise(results, args.bootstrap)
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    text = markdown(summary)
    (OUT / "summary.md").write_text(text, encoding="utf-8")
    print(text)
    main_set = summary["sets"].get("main") or next(iter(summary["sets"].values()))
    by = {r["measure"]: r["auroc"] for r in main_set["table"]}
    se, naive = by.get(SEMANTIC), by.get(NAIVE)
    print(
        f"RESULT accuracy={main_set['accuracy']:.3f} se_auroc={se[0] if se else float('nan'):.3f}"
        f" naive_auroc={naive[0] if naive else float('nan'):.3f}"
        f" best={main_set['table'][0]['measure']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
