"""LLM-as-a-judge with distribution-sensitive scores (TrustJudge: Wang, Song et al.,
arXiv 2509.21117), annotation and agreement.

The judge writes its rationale (greedy, or sampled with a recorded seed), then its probability
for every value of the scale is read at the score position:

- **local models**: exactly, by teacher forcing. The text up to the score position is
  ``judge prompt + rationale + "Score: ["`` and every value is scored as the continuation
  ``"<value>]"``, so a number the tokenizer splits into several tokens ("57" → "5", "7") is scored
  with all its tokens and the closing bracket: p(57) = p("5" "7" "]" | prefix). The prompt's KV
  cache is shared by every value. These are the model's raw probabilities; their sum is the
  ``mass`` the model put on the scale, and the distribution is renormalised over the scale.
- **servers without exact scoring** (``capabilities.exact_scoring`` false): the top-k
  log-probabilities at the score token of the generated judgement, as TrustJudge's code reads
  them; values outside the top-k get 0 and the result is flagged ``truncated``.

Pairwise comparison reads the verdict distribution over A / B / C the same way in both
presentation orders, and the perplexity of each order's judgement for the PPL rule. Heavy
statistics are computed once into result dataclasses; every score and relation is a cheap
function of them.

- :mod:`judge.scores`: the ONE table of score methods (emitted, argmax, G-Eval, expectation,
  TrustJudge, entropy…) that grading, annotation, plots and the tab iterate;
- :mod:`judge.trustjudge`: the score maths (expected scores, TrustJudge weights, rescaling);
- :mod:`judge.verdicts`: verdict letters and the pairwise relation rules;
- :mod:`judge.prompts`: judge prompts and parsing of judgements;
- :mod:`judge.config`: the judge's settings;
- :mod:`judge.grading`: single-answer grading → a score distribution;
- :mod:`judge.pairwise`: pairwise comparison in both orders;
- :mod:`judge.consistency`: Conflict Ratio and Non-Transitivity Ratio;
- :mod:`judge.pipeline`: the TrustJudge consistency run;
- :mod:`judge.items`: items to judge (demo set, CSV/JSONL imports);
- :mod:`judge.annotation`: annotation rows and agreement over stored judgements;
- :mod:`judge.agreement`: agreement statistics (Spearman, Kendall, Cohen, Krippendorff);
- :mod:`judge.reliability`: the ONE table of reliability measures (position, length, run-to-run
  spread, human agreement) with bootstrap intervals;
- :mod:`judge.length_bias`: length correlation, longer-answer and length-controlled win rates;
- :mod:`judge.report`: the reliability report run over questions with a judge backend.
"""
