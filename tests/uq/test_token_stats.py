import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.base import Generation, TokenRecord
from core.errors import ConfidantError
from uq.token_stats import entropy, perplexity, summarise, surprisal, varentropy

probs = st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=30).filter(
    lambda xs: sum(xs) > 1e-6
)


@given(probs)
def test_entropy_bounds(p):
    h = entropy(p)
    support = sum(1 for x in p if x / sum(p) > 0)
    assert -1e-9 <= h <= math.log(support) + 1e-9


@given(probs)
def test_entropy_is_permutation_invariant(p):
    assert entropy(p) == pytest.approx(entropy(list(reversed(p))), abs=1e-9)


@given(probs)
def test_varentropy_is_non_negative_and_is_the_surprisal_variance(p):
    q = np.asarray(p) / sum(p)
    nz = q[q > 0]
    s = -np.log(nz)
    assert varentropy(p) >= 0
    assert varentropy(p) == pytest.approx(float((nz * (s - (nz * s).sum()) ** 2).sum()), abs=1e-7)


def test_closed_forms():
    assert entropy([0.25] * 4) == pytest.approx(math.log(4))
    assert varentropy([0.25] * 4) == pytest.approx(0.0, abs=1e-12)
    assert varentropy([1.0, 0.0]) == 0.0
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2; E[s²] = ½(ln2)² + ½(2 ln2)² = 2.5 (ln2)²
    assert varentropy([0.5, 0.25, 0.25]) == pytest.approx(
        2.5 * math.log(2) ** 2 - (1.5 * math.log(2)) ** 2
    )
    assert surprisal(0.5) == pytest.approx(math.log(2))
    assert surprisal(0.0) == math.inf
    assert perplexity([math.log(0.5)] * 3) == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [[], [-1, 2], [float("nan"), 1], [0, 0]])
def test_bad_distributions_are_refused(bad):
    with pytest.raises(ConfidantError):
        entropy(bad)


def test_summary():
    g = Generation(
        text="ab",
        tokens=[
            TokenRecord("a", math.log(0.5), 1.0, 0.0),
            TokenRecord("b", math.log(0.25), 2.0, 0.0),
        ],
    )
    s = summarise(g)
    assert s.mean_entropy == 1.5 and s.max_entropy == 2.0
    assert s.sequence_probability == pytest.approx(0.125)
    assert s.perplexity == pytest.approx(0.125**-0.5)
    assert summarise(Generation("", [])).n_tokens == 0


def test_perplexity_is_one_implementation_with_clear_errors():
    import judge.verdicts
    import uq.semantic.estimators

    assert uq.token_stats.perplexity is perplexity
    assert judge.verdicts.judgement_perplexity([-1.0, -1.0]) == perplexity([-1.0, -1.0])
    for bad, message in (([], "non-empty"), ([float("nan")], "finite"), ([0.5], "≤ 0")):
        with pytest.raises(ConfidantError, match=message):
            perplexity(bad)
    assert perplexity([1e-9, -0.0]) == 1.0  # rounding above 0 is tolerated
