"""Choosing entailment offline: how well each entailment back-end tells same-meaning answer
pairs from different-meaning ones, on hand-written pairs (data/entailment/pairs.jsonl).

Runs the project's back-ends (``uq.semantic.entailment.make_entailment``):

- ``embedding`` (all-MiniLM-L6-v2 through ``backends.embeddings``): a pair is "same" when the
  cosine similarity of the two answers' embeddings is at least the threshold — the rule the
  semantic pipeline applies (``uq.semantic.pair_stats``). Swept over thresholds 0.50 … 0.95
  (step 0.05), with and without the question prepended to each answer.
- ``generator`` (the real model asked "does answer 1 entail answer 2?", both directions),
  read with the strict rule (entailment both ways) and the lenient one (no contradiction
  either way, not neutral both ways), as ``uq.semantic.clustering.entailment_equivalent``.

Reports accuracy and balanced accuracy (mean of the rate on same pairs and on different pairs,
so the half-and-half split does not flatter a back-end that says "same" to everything), the
accuracy on near misses (answers that differ in one entity or number) at every threshold, and
per-kind accuracy for the best option with and without the question and for the generator.
The best option maximises balanced accuracy (ties: higher accuracy, then the lower threshold,
then not prepending). ``uq.semantic.entailment`` takes its embedding defaults from it, and a
test checks they equal what the committed results file names.

    python bench/entailment_threshold.py [--model DIR_OR_NAME] [--no-generator] \\
        [--out data/entailment/results.json]

Last line: ``RESULT best_threshold=<t> question=<bool> balanced_accuracy=<x>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAIRS = ROOT / "data" / "entailment" / "pairs.jsonl"
RESULTS = ROOT / "data" / "entailment" / "results.json"
THRESHOLDS = tuple(round(0.50 + 0.05 * k, 2) for k in range(10))  # 0.50 … 0.95
NEAR_MISS_KINDS = ("near_miss_entity", "near_miss_number")
FIELDS = ("question", "a", "b", "same", "kind")


# --------------------------------------------------------------------------------------------
# Data and scores (plain functions, tested without a model)
# --------------------------------------------------------------------------------------------


def load_pairs(path: Path = PAIRS) -> list[dict]:
    """The labelled pairs, one JSON object a line with ``FIELDS``."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = [k for k in FIELDS if k not in row]
            if missing:
                raise ValueError(f"{path}:{n}: missing {missing}")
            if not isinstance(row["same"], bool):
                raise ValueError(f"{path}:{n}: 'same' must be true or false")
            rows.append(row)
    return rows


def binary_scores(predicted: Sequence[bool], gold: Sequence[bool]) -> dict:
    """Accuracy, the rate on same pairs (``tpr``), on different pairs (``tnr``) and balanced
    accuracy = (tpr + tnr) / 2, or the one rate present when a set has only one label."""
    if len(predicted) != len(gold):
        raise ValueError("predicted and gold differ in length")
    n = len(gold)
    pos = [p for p, g in zip(predicted, gold, strict=True) if g]
    neg = [p for p, g in zip(predicted, gold, strict=True) if not g]
    tpr = sum(bool(p) for p in pos) / len(pos) if pos else None
    tnr = sum(not p for p in neg) / len(neg) if neg else None
    rates = [r for r in (tpr, tnr) if r is not None]
    correct = sum(bool(p) == bool(g) for p, g in zip(predicted, gold, strict=True))
    return {
        "n": n,
        "accuracy": correct / n if n else None,
        "balanced_accuracy": sum(rates) / len(rates) if rates else None,
        "tpr": tpr,
        "tnr": tnr,
    }


def per_kind(predicted: Sequence[bool], rows: Sequence[dict]) -> dict[str, dict]:
    """Accuracy of ``predicted`` within each ``kind`` of pair."""
    kinds = sorted({r["kind"] for r in rows})
    out = {}
    for kind in kinds:
        idx = [i for i, r in enumerate(rows) if r["kind"] == kind]
        s = binary_scores([predicted[i] for i in idx], [rows[i]["same"] for i in idx])
        out[kind] = {"n": s["n"], "accuracy": s["accuracy"], "same": rows[idx[0]]["same"]}
    return out


def near_miss_accuracy(predicted: Sequence[bool], rows: Sequence[dict]) -> float | None:
    idx = [i for i, r in enumerate(rows) if r["kind"] in NEAR_MISS_KINDS]
    if not idx:
        return None
    return sum(predicted[i] == rows[i]["same"] for i in idx) / len(idx)


def sweep(cosines: Sequence[float], rows: Sequence[dict], condition: bool) -> list[dict]:
    """One row per threshold: a pair is "same" when its cosine is at least the threshold."""
    gold = [r["same"] for r in rows]
    out = []
    for t in THRESHOLDS:
        pred = [c >= t for c in cosines]
        out.append(
            {
                "threshold": t,
                "condition_on_question": condition,
                **binary_scores(pred, gold),
                "near_miss_accuracy": near_miss_accuracy(pred, rows),
            }
        )
    return out


def best_option(rows: Sequence[dict]) -> dict:
    """The sweep row with the highest balanced accuracy; ties: higher accuracy, then the lower
    threshold, then not prepending the question."""
    return max(
        rows,
        key=lambda r: (
            round(r["balanced_accuracy"], 12),
            round(r["accuracy"], 12),
            -r["threshold"],
            not r["condition_on_question"],
        ),
    )


def separability(scores: Sequence[float], rows: Sequence[dict], kinds=None) -> float | None:
    """AUROC of ``scores`` as a detector of same-meaning pairs (0.5 chance, 1 perfect) —
    how well *any* threshold could do. With ``kinds``, the different-meaning pairs are only
    those kinds (e.g. near misses against every same-meaning pair)."""
    from uq.evaluation.metrics import auroc

    keep = [i for i, r in enumerate(rows) if r["same"] or kinds is None or r["kind"] in kinds]
    same = [rows[i]["same"] for i in keep]
    if all(same) or not any(same):
        return None
    return auroc([-float(scores[i]) for i in keep], same)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# The back-ends
# --------------------------------------------------------------------------------------------


def embedding_cosines(embedder, rows: Sequence[dict], condition: bool) -> list[float]:
    """Each pair's cosine under the project's ``EmbeddingEntailment`` (threshold irrelevant)."""
    from uq.semantic.entailment import make_entailment

    ent = make_entailment("embedding", embedder=embedder, condition_on_question=condition)
    by_question: dict[str, list[str]] = {}
    for r in rows:  # one embedding batch per question, as the pipeline embeds one question's
        texts = by_question.setdefault(r["question"], [])  # answers together
        texts += [t for t in (r["a"], r["b"]) if t not in texts]
    cos = {q: ent.cosine(q, texts) for q, texts in by_question.items()}
    return [
        float(
            cos[r["question"]][
                by_question[r["question"]].index(r["a"]), by_question[r["question"]].index(r["b"])
            ]
        )
        for r in rows
    ]


class _RecordingLM:
    """Passes every call to ``lm``, keeping the probabilities ``choice_probs`` returned."""

    def __init__(self, lm) -> None:
        self.lm = lm
        self.model_id = getattr(lm, "model_id", type(lm).__name__)
        self.probs: list[list[float]] = []

    def choice_probs(self, *args, **kwargs):
        probs = self.lm.choice_probs(*args, **kwargs)
        self.probs.append(list(probs))
        return probs

    def __getattr__(self, name):
        return getattr(self.lm, name)


def generator_labels(lm, rows: Sequence[dict]) -> tuple[list[tuple[int, int]], list[float]]:
    """(forward, backward) NLI-style labels from the generator for each pair, and each pair's
    p(entailment) averaged over both directions (a threshold-free score)."""
    from uq.semantic.entailment import GeneratorEntailment, make_entailment

    recording = _RecordingLM(lm)
    ent = make_entailment("generator", lm=recording)
    k_ent = GeneratorEntailment.OPTIONS.index("entailment")
    out, p_ent = [], []
    for k, r in enumerate(rows, 1):
        f, b = ent.label_pairs(r["question"], [r["a"], r["b"]], [(0, 1), (1, 0)])
        out.append((f, b))
        p_ent.append((recording.probs[-2][k_ent] + recording.probs[-1][k_ent]) / 2)
        if k % 50 == 0:
            print(f"  generator: {k}/{len(rows)} pairs", flush=True)
    return out, p_ent


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", default=str(PAIRS))
    ap.add_argument("--model", default="smollm2-135m", help="generator for generator entailment")
    ap.add_argument("--embedding-model", default=None, help="default: all-MiniLM-L6-v2")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-generator", action="store_true", help="embedding sweep only")
    ap.add_argument("--out", default=str(RESULTS), help="results JSON ('' to skip writing)")
    args = ap.parse_args(argv)

    from backends.embeddings import DEFAULT_EMBEDDING_MODEL
    from backends.registry import BackendConfig, Backends
    from uq.semantic.clustering import entailment_equivalent

    pairs_path = Path(args.pairs)
    rows = load_pairs(pairs_path)
    gold = [r["same"] for r in rows]
    counts = Counter(r["kind"] for r in rows)
    print(f"{len(rows)} pairs: {sum(gold)} same, {len(gold) - sum(gold)} different; {dict(counts)}")

    backends = Backends(
        BackendConfig(
            model=args.model,
            embedding_model=args.embedding_model or DEFAULT_EMBEDDING_MODEL,
            device=args.device,
        )
    )
    embedder = backends.embedder()
    result: dict = {
        "command": "python bench/entailment_threshold.py " + " ".join(argv or sys.argv[1:]),
        "pairs": {
            "path": str(pairs_path.relative_to(ROOT))
            if pairs_path.is_relative_to(ROOT)
            else str(pairs_path),
            "sha256": file_sha256(pairs_path),
            "n": len(rows),
            "same": sum(gold),
            "different": len(gold) - sum(gold),
            "kinds": dict(sorted(counts.items())),
        },
        "embedding": {"model": embedder.model_id, "sweep": [], "best_by_question": {}},
    }

    started = time.perf_counter()
    print("\nEmbedding entailment: cosine ≥ threshold means the same meaning")
    print("question  threshold  accuracy  balanced  same-rate  diff-rate  near-miss")
    cos_by_condition = {}
    for condition in (False, True):
        cosines = embedding_cosines(embedder, rows, condition)
        cos_by_condition[condition] = cosines
        table = sweep(cosines, rows, condition)
        result["embedding"]["sweep"] += table
        for r in table:
            print(
                f"{'yes' if condition else 'no':>8}  {r['threshold']:9.2f}  {_fmt(r['accuracy']):>8}"
                f"  {_fmt(r['balanced_accuracy']):>8}  {_fmt(r['tpr']):>9}  {_fmt(r['tnr']):>9}"
                f"  {_fmt(r['near_miss_accuracy']):>9}"
            )
        best = dict(best_option(table))
        pred = [c >= best["threshold"] for c in cosines]
        best["per_kind"] = per_kind(pred, rows)
        best["cosine_by_kind"] = {
            kind: {
                "min": min(c for c, r in zip(cosines, rows, strict=True) if r["kind"] == kind),
                "max": max(c for c, r in zip(cosines, rows, strict=True) if r["kind"] == kind),
            }
            for kind in sorted(counts)
        }
        best["auroc_all"] = separability(cosines, rows)
        best["auroc_near_miss"] = separability(cosines, rows, NEAR_MISS_KINDS)
        result["embedding"]["best_by_question"][str(condition).lower()] = best
    result["embedding"]["seconds"] = round(time.perf_counter() - started, 1)
    best = best_option(result["embedding"]["sweep"])
    result["embedding"]["best"] = {
        "threshold": best["threshold"],
        "condition_on_question": best["condition_on_question"],
        "accuracy": best["accuracy"],
        "balanced_accuracy": best["balanced_accuracy"],
        "near_miss_accuracy": best["near_miss_accuracy"],
    }
    for condition, b in result["embedding"]["best_by_question"].items():
        print(
            f"\nBest with question prepended = {condition}: threshold {b['threshold']:.2f}, "
            f"balanced accuracy {b['balanced_accuracy']:.3f}; per kind:"
        )
        for kind, s in b["per_kind"].items():
            c = b["cosine_by_kind"][kind]
            print(
                f"  {kind:<18} n={s['n']:<3} accuracy {s['accuracy']:.3f}  "
                f"(cosine {c['min']:.2f} … {c['max']:.2f})"
            )
        print(
            f"  cosine AUROC for same meaning: all pairs {_fmt(b['auroc_all'])}, same pairs "
            f"vs near misses only {_fmt(b['auroc_near_miss'])}"
        )

    if not args.no_generator:
        lm = backends.generator()
        print(f"\nGenerator entailment with {getattr(lm, 'model_id', args.model)}")
        started = time.perf_counter()
        labels, p_ent = generator_labels(lm, rows)
        names = {0: "contradiction", 1: "neutral", 2: "entailment"}
        gen = {
            "model": getattr(lm, "model_id", args.model),
            "seconds": round(time.perf_counter() - started, 1),
            "labels": dict(Counter(names[x] for fb in labels for x in fb)),
            "p_entailment_mean": sum(p_ent) / len(p_ent),
            "auroc_all": separability(p_ent, rows),
            "auroc_near_miss": separability(p_ent, rows, NEAR_MISS_KINDS),
        }
        for rule, strict in (("strict", True), ("lenient", False)):
            pred = [entailment_equivalent(f, b, strict) for f, b in labels]
            gen[rule] = {
                **binary_scores(pred, gold),
                "near_miss_accuracy": near_miss_accuracy(pred, rows),
                "per_kind": per_kind(pred, rows),
            }
            s = gen[rule]
            print(
                f"  {rule:<8} accuracy {_fmt(s['accuracy'])}  balanced "
                f"{_fmt(s['balanced_accuracy'])}  same-rate {_fmt(s['tpr'])}  diff-rate "
                f"{_fmt(s['tnr'])}  near-miss {_fmt(s['near_miss_accuracy'])}"
            )
        print(f"  labels given (both directions): {gen['labels']}; {gen['seconds']} s")
        print(
            f"  p(entailment), mean {gen['p_entailment_mean']:.3f}, as a score for same "
            f"meaning: AUROC all pairs {_fmt(gen['auroc_all'])}, same vs near misses "
            f"{_fmt(gen['auroc_near_miss'])}"
        )
        result["generator"] = gen

    if args.out:
        Path(args.out).write_text(
            json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print(f"\nwrote {args.out}")
    b = result["embedding"]["best"]
    print(
        f"RESULT best_threshold={b['threshold']:.2f} question={b['condition_on_question']} "
        f"balanced_accuracy={b['balanced_accuracy']:.3f}"
    )
    return result


if __name__ == "__main__":
    main()
