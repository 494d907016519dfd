"""Inv-Entropy (Song, Ji, Shi, Lai, Al Kontar 2025, arXiv 2506.09684): how diverse the
inputs are given an output, over perturbed versions of the question.

- :mod:`uq.inv.pipeline`: perturb, answer every input r times, measure (``run_inv_entropy``);
- :mod:`uq.inv.options`: defaults, limits and checks of user input;
- :mod:`uq.inv.perturbation`: choosing the perturbed questions;
- :mod:`uq.inv.paraphrase`: the paraphrase prompt and its parser;
- :mod:`uq.inv.gaap`: GAAP, the genetic-algorithm perturbation;
- :mod:`uq.inv.substitutes`: key words and embedding substitutes for GAAP;
- :mod:`uq.inv.wordnet`: a reader of the WordNet database for GAAP;
- :mod:`uq.inv.similarity`: similarities between responses (NLI, embeddings);
- :mod:`uq.inv.maths`: the dual random walk and the entropies;
- :mod:`uq.inv.measures`: the ONE table of measures and the bootstrap;
- :mod:`uq.inv.result`: the result dataclass the store saves;
- :mod:`uq.inv.offline`: the user's own inputs and responses, no model;
- :mod:`uq.inv.provider`: Inv-Entropy as a measure provider of the evaluation harness;
- :mod:`uq.inv.tsu_sweep`: the pipeline at each temperature, for TSU.
"""
