"""Tests on the embedded real model SmolLM2-135M-Instruct, all marked ``real``.

- :mod:`tests.real.conftest`: the session fixture ``real_lm`` (skips, or fails on CI, when the
  model is not prepared);
- :mod:`tests.real.test_backend`: token records against a softmax of the logits, one generate
  call for n samples, a right greedy answer, ``choice_probs`` over multi-token names;
- :mod:`tests.real.test_judge`: digit tokenization and the exact score distribution on 1..5 and
  1..100 against separate passes;
- :mod:`tests.real.test_semantic`: semantic entropy of a question it knows below one it cannot;
- :mod:`tests.real.test_twenty_questions`: a 20 Questions game with the model posterior.
"""
