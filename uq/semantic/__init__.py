"""Semantic entropy and its family (Kuhn et al. 2023; Farquhar et al., Nature 2024).

For one question the pipeline samples N answers and a low-temperature reference answer, clusters
them by meaning, and computes every measure of ONE table from the same statistics.

- :mod:`uq.semantic.pipeline`: sample, cluster, measure (``run_semantic_entropy``);
- :mod:`uq.semantic.entailment`: the entailment back-ends (NLI, embeddings, the generator);
- :mod:`uq.semantic.pair_stats`: which pairs are labelled, the label matrix, the clusters;
- :mod:`uq.semantic.clustering`: bidirectional-entailment clustering;
- :mod:`uq.semantic.estimators`: the formulas (semantic entropy, predictive entropy, …);
- :mod:`uq.semantic.black_box`: measures from answer texts alone (lexical, spectral, KLE);
- :mod:`uq.semantic.sar`: TokenSAR, SentSAR and SAR (Duan et al. 2024);
- :mod:`uq.semantic.semantic_density`: Semantic Density (Qiu & Miikkulainen 2024);
- :mod:`uq.semantic.relevance`: token relevance and graded similarity for those two;
- :mod:`uq.semantic.measures`: the ONE table of measures (``MEASURES``);
- :mod:`uq.semantic.p_true`: p(True), zero- and few-shot;
- :mod:`uq.semantic.verbalized`: verbalized confidence, one- and two-stage (prompt, parser);
- :mod:`uq.semantic.cocoa`: CoCoA (confidence × inconsistency with the samples) and the
  reference-to-sample similarity;
- :mod:`uq.semantic.result`: the result dataclass the store saves;
- :mod:`uq.semantic.pasted`: pasted answers, scored without a model.
"""
