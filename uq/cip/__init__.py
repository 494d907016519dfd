"""Conformal information pursuit (C-IP), played as 20 Questions.

Source: Chan, Ge, Dobriban, Hassani & Vidal, "Conformal Information Pursuit for Interactively
Guiding Large Language Models" (NeurIPS 2025), with the split-by-coverage entropy bound of the
authors' code (after Correia et al. 2024, Proposition 3.1 of the paper).

The querier asks, at each turn k, the question whose answer is expected to leave the smallest
conformal prediction set for the hidden class. The language model only enters as callables:

- ``posterior_batch(histories) -> array (len(histories), K)``: p̂(class | history) for many
  histories in one batched call (a history is a list of (question, answer) pairs);
- ``answerer(label, query) -> str``: the answer a hypothetical hidden class would give (the bank
  lookup ``ClassSet.answer`` by default, or a model role-playing the class).

Everything else is plain arithmetic. Sets are ``{y : p̂(y | h) ≥ τ}`` with one conformal threshold
τ per history length k = 1..L, calibrated on random histories. Set-size bounds and posterior
entropies are in bits (log2), as in the paper.

Modules, in the order a game uses them:

- :mod:`uq.cip.class_sets`: the class set and query bank (CSV), the bank oracle;
- :mod:`uq.cip.llm_posterior`: the language model's posterior, answerer and open queries;
- :mod:`uq.cip.conformal`: thresholds, prediction sets, entropy bounds, stopping;
- :mod:`uq.cip.calibration`: thresholds calibrated on random histories, coverage check;
- :mod:`uq.cip.selection`: the next question by C-IP or IP;
- :mod:`uq.cip.game`: one game, turn by turn, to the final guess;
- :mod:`uq.cip.benchmark`: C-IP against IP over many games.
"""
