"""Uncertainty measures and their pipelines: plain functions over numbers and callables.

- :mod:`uq.token_stats`: per-token entropy, varentropy, surprisal, perplexity;
- :mod:`uq.trace`: one answer's per-token entropy trace (the Generate tab);
- :mod:`uq.semantic`: semantic entropy and its family;
- :mod:`uq.inv`: Inv-Entropy with paraphrase and GAAP perturbations;
- :mod:`uq.cip`: conformal information pursuit, played as 20 Questions;
- :mod:`uq.evaluation`: the dataset evaluation harness, metrics, correctness and TSU;
- :mod:`uq.measure_docs`: the README's measure lists, rendered from the measure tables.
"""
