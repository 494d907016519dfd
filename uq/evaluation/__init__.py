"""Which measure predicts errors best on a dataset: the ONE evaluation harness.

- :mod:`uq.evaluation.harness`: ``run_evaluation`` — answer, judge, measure, score, cache;
- :mod:`uq.evaluation.concurrency`: many questions in flight against a server; throughput;
- :mod:`uq.evaluation.settings`: the run's parameters and the cache key they make;
- :mod:`uq.evaluation.providers`: measure providers other methods plug in (passed explicitly);
- :mod:`uq.evaluation.scoring`: each measure column's metrics, curves and calibration;
- :mod:`uq.evaluation.result`: the evaluation's rows, metrics and curves;
- :mod:`uq.evaluation.datasets`: question-answer datasets (CSV/JSONL);
- :mod:`uq.evaluation.external`: a Hugging Face dataset by name/split, or a parquet file, with
  a column mapping;
- :mod:`uq.evaluation.samples`: your own generations (a samples file) scored with no generator;
- :mod:`uq.evaluation.few_shot`: the few-shot answer prompt from the dataset's first questions;
- :mod:`uq.evaluation.correctness`: is an answer correct (contains a gold answer, SQuAD F1,
  exact match, ROUGE-L…);
- :mod:`uq.evaluation.metrics`: AUROC, AURAC, rejection accuracy, PRR, bootstrap intervals;
- :mod:`uq.evaluation.calibration`: ECE, Brier score, log loss, reliability bins; Platt and
  isotonic calibration of any measure into P(correct) on a seeded split;
- :mod:`uq.evaluation.tsu`: temperature sensitivity of uncertainty.
"""
