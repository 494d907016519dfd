"""Semantic Density: known values, properties, and the pipeline on tiny models."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.nli import NLIModel
from core.errors import ConfidantError
from uq.semantic.entailment import NLIEntailment
from uq.semantic.pipeline import run_semantic_entropy
from uq.semantic.semantic_density import (
    nli_kernel,
    semantic_density,
    semantic_density_uncertainty,
)

QUESTION = "What is the capital of France?"


def test_hand_computed_density():
    # reference p = 0.5, samples "a" (p 0.5, K 1) and "b" (p 0.25, K 0.2)
    lp = [math.log(0.5), math.log(0.25)]
    want = (0.5 + 0.5 * 1.0 + 0.25 * 0.2) / (0.5 + 0.5 + 0.25)
    assert semantic_density(["a", "b"], lp, [1.0, 0.2], math.log(0.5)) == pytest.approx(want)
    assert semantic_density_uncertainty(["a", "b"], lp, [1.0, 0.2], math.log(0.5)) == (
        pytest.approx(1 - want)
    )


def test_duplicates_count_once():
    one = semantic_density(["a", "b"], [-1.0, -2.0], [0.5, 0.1], -1.0)
    dup = semantic_density(["a", "a", "b"], [-1.0, -1.0, -2.0], [0.5, 0.5, 0.1], -1.0)
    assert one == pytest.approx(dup)


def test_degenerate_inputs():
    # every sample means the reference: density 1, uncertainty 0
    assert semantic_density_uncertainty(["x"] * 3, [-0.3] * 3, [1.0] * 3, -0.7) == 0.0
    # one answer; empty answer texts are answers like any other
    assert 0.0 < semantic_density_uncertainty([""], [0.0], [0.0], 0.0) < 1.0
    # underflowing probabilities stay finite
    assert math.isfinite(semantic_density(["a"], [-5000.0], [0.3], -4000.0))
    with pytest.raises(ConfidantError):
        semantic_density([], [], [], 0.0)
    with pytest.raises(ConfidantError):
        semantic_density(["a"], [0.0, 1.0], [0.2], 0.0)


def test_nli_kernel():
    assert nli_kernel(0.0, 0.0) == 1.0 and nli_kernel(1.0, 0.0) == 0.0
    assert nli_kernel(0.2, 0.4) == pytest.approx(0.6)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_bounds_order_invariance_and_monotone_kernel(data):
    n = data.draw(st.integers(1, 6))
    texts = data.draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    lp = data.draw(st.lists(st.floats(-20.0, 0.0), min_size=n, max_size=n))
    k = data.draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    ref = data.draw(st.floats(-20.0, 0.0))
    u = semantic_density_uncertainty(texts, lp, k, ref)
    assert 0.0 <= u < 1.0
    order = data.draw(st.permutations(range(n)))
    again = semantic_density_uncertainty(
        [texts[i] for i in order], [lp[i] for i in order], [k[i] for i in order], ref
    )
    assert u == pytest.approx(again)
    # raising every kernel (samples closer to the reference) never raises the uncertainty
    closer = [min(1.0, x + 0.1) for x in k]
    assert semantic_density_uncertainty(texts, lp, closer, ref) <= u + 1e-12


@pytest.fixture(scope="module")
def tiny_nli(tiny_nli_dir):
    return NLIModel(str(tiny_nli_dir)).load()


def test_pipeline_semantic_density_in_range(tiny_lm, tiny_nli):
    result = run_semantic_entropy(
        tiny_lm, QUESTION, NLIEntailment(tiny_nli), n=4, max_new_tokens=6, seed=2,
        measures=["semantic_density"],
    )  # fmt: skip
    entry = result.measures["semantic_density"]
    assert entry["note"] is None and 0.0 <= entry["value"] < 1.0
