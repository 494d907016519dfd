import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfidantError
from uq.semantic.clustering import (
    cluster_by_entailment,
    cluster_texts,
    entailment_equivalent,
    normalise_answer_text,
)
from uq.semantic.estimators import (
    cluster_probabilities,
    discrete_semantic_entropy,
    kuhn_semantic_entropy,
    length_normalised_predictive_entropy,
    max_token_entropy,
    maximum_sequence_probability,
    mean_token_entropy,
    normalise_by_log_n,
    number_of_semantic_sets,
    p_true_uncertainty,
    predictive_entropy,
    semantic_entropy,
)
from uq.token_stats import perplexity

C, N, E = 0, 1, 2

# ---------------------------------------------------------------------------------------------
# Entailment rules and the clustering walk
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forward", "backward", "strict", "lenient"),
    [
        (E, E, True, True),
        (E, N, False, True),
        (N, E, False, True),
        (N, N, False, False),
        (E, C, False, False),
        (C, E, False, False),
        (C, C, False, False),
        (N, C, False, False),
    ],
)
def test_equivalence_rules(forward, backward, strict, lenient):
    assert entailment_equivalent(forward, backward, strict=True) is strict
    assert entailment_equivalent(forward, backward, strict=False) is lenient


def table_nli(table, calls=None):
    """NLI stub from a dict {(premise, hypothesis): label}; unknown pairs are neutral."""

    def nli(i, j):
        if calls is not None:
            calls.append((i, j))
        return table.get((i, j), N)

    return nli


def both(table, i, j, label_ij, label_ji=None):
    table[(i, j)] = label_ij
    table[(j, i)] = label_ij if label_ji is None else label_ji


def test_strict_needs_entailment_both_ways_lenient_does_not():
    table = {}
    both(table, 0, 1, E, N)  # one-way entailment: lenient merges, strict does not
    both(table, 0, 2, N, N)  # neutral both ways: neither merges
    both(table, 1, 2, N, N)
    assert cluster_by_entailment(3, table_nli(table), strict=True) == [0, 1, 2]
    assert cluster_by_entailment(3, table_nli(table), strict=False) == [0, 0, 1]


def test_lenient_rejects_any_contradiction():
    table = {}
    both(table, 0, 1, E, C)
    assert cluster_by_entailment(2, table_nli(table), strict=False) == [0, 1]


def test_first_member_comparison_differs_from_any_member():
    # 0 ≡ 1 and 1 ≡ 2, but 0 and 2 are not equivalent. Comparing with the first member of a
    # cluster puts 2 in a new cluster; comparing with any member would have joined it to 0's.
    table = {}
    both(table, 0, 1, E)
    both(table, 1, 2, E)
    both(table, 0, 2, C)
    ids = cluster_by_entailment(3, table_nli(table), strict=True)
    assert ids == [0, 0, 1]

    def any_member_walk(n, nli):
        clusters: list[list[int]] = []
        out = []
        for i in range(n):
            for c, members in enumerate(clusters):
                if any(nli(m, i) == E and nli(i, m) == E for m in members):
                    members.append(i)
                    out.append(c)
                    break
            else:
                clusters.append([i])
                out.append(len(clusters) - 1)
        return out

    assert any_member_walk(3, table_nli(table)) == [0, 0, 0]


def test_first_match_wins():
    # 2 is equivalent to both representatives 0 and 1; it joins the earlier cluster.
    table = {}
    both(table, 0, 1, C)
    both(table, 0, 2, E)
    both(table, 1, 2, E)
    assert cluster_by_entailment(3, table_nli(table)) == [0, 1, 0]


def test_sequential_walk_calls_representative_first_and_short_circuits():
    calls = []
    table = {}
    both(table, 0, 1, N)
    cluster_by_entailment(2, table_nli(table, calls), strict=True)
    assert calls == [(0, 1)]  # neutral forward already fails the strict rule


def test_cluster_by_entailment_rejects_bad_labels_and_sizes():
    with pytest.raises(ConfidantError, match="0, 1 or 2"):
        cluster_by_entailment(2, lambda i, j: 3)
    with pytest.raises(ConfidantError, match="integer"):
        cluster_by_entailment(2, lambda i, j: "entailment")
    with pytest.raises(ConfidantError):
        cluster_by_entailment(0, lambda i, j: E)


def batch_from(table, log=None):
    def nli_batch(pairs):
        if log is not None:
            log.append(list(pairs))
        return [table.get(p, N) for p in pairs]

    return nli_batch


label_tables = st.integers(min_value=1, max_value=8).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.sampled_from([C, N, E]), min_size=n * n, max_size=n * n),
        st.booleans(),
    )
)


@given(label_tables)
@settings(max_examples=200, deadline=None)
def test_batched_rounds_equal_sequential_walk_and_ask_the_same_pairs(args):
    n, flat, strict = args
    table = {(i, j): flat[i * n + j] for i in range(n) for j in range(n) if i != j}
    texts = [f"answer {i}" for i in range(n)]
    log = []
    result = cluster_texts(texts, batch_from(table, log), strict=strict, lazy_reverse=False)
    assert result.cluster_ids == cluster_by_entailment(n, table_nli(table), strict=strict)
    # One call per cluster opened with someone left to compare, each pair asked once.
    asked = [p for batch in log for p in batch]
    assert len(asked) == len(set(asked)) == result.n_pairs
    assert result.n_calls == len(log) <= result.n_clusters
    # The pairs asked are exactly those the sequential walk compares (both directions).
    walked = set()
    reps: list[int] = []
    for i in range(n):
        for rep in reps:
            walked |= {(rep, i), (i, rep)}
            if entailment_equivalent(table[(rep, i)], table[(i, rep)], strict):
                break
        else:
            reps.append(i)
    assert set(asked) == walked
    assert result.representatives == reps
    labels = np.array(result.labels)
    for i, j in asked:
        assert labels[i, j] == table[(i, j)]
    assert (labels >= 0).sum() == len(asked)


@given(label_tables)
@settings(max_examples=200, deadline=None)
def test_lazy_rounds_ask_exactly_the_pairs_of_the_sequential_walk(args):
    n, flat, strict = args
    table = {(i, j): flat[i * n + j] for i in range(n) for j in range(n) if i != j}
    texts = [f"answer {i}" for i in range(n)]
    log, walked = [], []
    result = cluster_texts(texts, batch_from(table, log), strict=strict)
    assert result.cluster_ids == cluster_by_entailment(n, table_nli(table, walked), strict)
    asked = [p for batch in log for p in batch]
    assert len(asked) == len(set(asked)) == result.n_pairs
    assert sorted(asked) == sorted(walked)  # the fewest pairs: the sequential walk's own
    assert result.n_calls == len(log) <= 2 * result.n_clusters
    eager = cluster_texts(texts, batch_from(table), strict=strict, lazy_reverse=False)
    assert eager.cluster_ids == result.cluster_ids and eager.n_pairs >= result.n_pairs


def test_cluster_texts_deduplicates_normalised_strings():
    texts = ["Paris", "paris.", "  PARIS ", "Lyon", "Paris"]
    log = []
    table = {(0, 3): C, (3, 0): C}
    result = cluster_texts(texts, batch_from(table, log))
    assert result.cluster_ids == [0, 0, 0, 1, 0]
    assert result.duplicate_of == [0, 0, 0, 3, 0]
    # Only the two distinct strings go through NLI; a contradiction one way settles the pair.
    assert log == [[(0, 3)]]
    labels = np.array(result.labels)
    # The label for (Paris, Lyon) fills every duplicate of Paris; the reverse direction,
    # duplicates among themselves and the diagonal were never computed.
    assert all(labels[i, 3] == C and labels[3, i] == -1 for i in (0, 1, 2, 4))
    assert labels[0, 1] == labels[1, 1] == -1
    assert json.loads(json.dumps(result.to_dict()))["cluster_ids"] == result.cluster_ids


def test_cluster_texts_cache_saves_calls_on_repeat():
    texts = ["red", "crimson", "blue"]
    table = {(0, 1): E, (1, 0): E, (0, 2): E, (2, 0): C}
    cache: dict = {}
    first = cluster_texts(texts, batch_from(table), cache=cache)
    log = []
    second = cluster_texts(texts, batch_from(table, log), cache=cache)
    assert first.cluster_ids == second.cluster_ids == [0, 0, 1]
    assert log == [] and second.n_calls == 0 and second.n_cached == first.n_pairs == 4


def test_cluster_texts_checks_nli_answers():
    with pytest.raises(ConfidantError, match="labels for"):
        cluster_texts(["a", "b"], lambda pairs: [])
    with pytest.raises(ConfidantError, match="0, 1 or 2"):
        cluster_texts(["a", "b"], lambda pairs: [5] * len(pairs))
    with pytest.raises(ConfidantError):
        cluster_texts([], lambda pairs: [])


def test_single_answer_needs_no_nli():
    result = cluster_texts(["only"], batch_from({}))
    assert result.cluster_ids == [0] and result.n_calls == 0 and result.labels == [[-1]]


def test_normalise_answer_text():
    assert normalise_answer_text("  The  Moon. ") == "the moon"
    assert normalise_answer_text("42") != normalise_answer_text("4 2")


# ---------------------------------------------------------------------------------------------
# Entropies
# ---------------------------------------------------------------------------------------------

answers = st.integers(min_value=1, max_value=12).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(min_value=0, max_value=5), min_size=n, max_size=n),
        st.lists(st.floats(min_value=-30, max_value=0, allow_nan=False), min_size=n, max_size=n),
    )
)


@given(answers)
def test_entropies_are_between_zero_and_log_k(args):
    ids, ll = args
    k = len(set(ids))
    for value in (discrete_semantic_entropy(ids), semantic_entropy(ids, ll)):
        assert 0.0 <= value <= math.log(k) + 1e-9
    assert number_of_semantic_sets(ids) == k


@given(answers, st.permutations(range(6)), st.randoms(use_true_random=False))
def test_invariant_to_relabelling_and_to_order(args, relabel, rnd):
    ids, ll = args
    renamed = [relabel[i] * 7 - 3 for i in ids]  # any injective relabelling
    order = list(range(len(ids)))
    rnd.shuffle(order)
    shuffled_ids = [ids[i] for i in order]
    shuffled_ll = [ll[i] for i in order]
    for fn in (semantic_entropy, kuhn_semantic_entropy):
        base = fn(ids, ll)
        assert fn(renamed, ll) == pytest.approx(base, abs=1e-9)
        assert fn(shuffled_ids, shuffled_ll) == pytest.approx(base, abs=1e-9)
    assert discrete_semantic_entropy(renamed) == pytest.approx(discrete_semantic_entropy(ids))
    assert discrete_semantic_entropy(shuffled_ids) == pytest.approx(discrete_semantic_entropy(ids))


@given(answers, st.data())
def test_a_duplicated_answer_adds_its_mass_to_its_cluster(args, data):
    ids, ll = args
    i = data.draw(st.integers(min_value=0, max_value=len(ids) - 1))
    with_duplicate = semantic_entropy(ids + [ids[i]], ll + [ll[i]])
    doubled = list(ll)
    doubled[i] = ll[i] + math.log(2)  # the same answer twice = twice its probability
    assert with_duplicate == pytest.approx(semantic_entropy(ids, doubled), abs=1e-9)


@given(answers, st.floats(min_value=-50, max_value=50))
def test_semantic_entropy_ignores_a_common_shift_of_log_likelihoods(args, shift):
    ids, ll = args
    shifted = [x + shift for x in ll]
    assert semantic_entropy(ids, shifted) == pytest.approx(semantic_entropy(ids, ll), abs=1e-9)


def test_closed_forms():
    # Two clusters with probabilities 0.6 and 0.4.
    ll = [math.log(0.3), math.log(0.3), math.log(0.4)]
    expected = -(0.6 * math.log(0.6) + 0.4 * math.log(0.4))
    assert semantic_entropy([0, 0, 1], ll) == pytest.approx(expected)
    assert cluster_probabilities([0, 0, 1], ll) == pytest.approx({0: 0.6, 1: 0.4})
    # Unnormalised masses are renormalised over the observed clusters.
    assert semantic_entropy([0, 0, 1], [math.log(0.03)] * 2 + [math.log(0.04)]) == (
        pytest.approx(expected)
    )
    # Discrete: counts 3 and 1 of 4.
    assert discrete_semantic_entropy([5, 5, 5, 9]) == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    )
    assert discrete_semantic_entropy([0, 1, 2, 3]) == pytest.approx(math.log(4))
    assert discrete_semantic_entropy([2, 2, 2]) == 0.0
    assert cluster_probabilities([1, 0, 1, 1]) == {0: 0.25, 1: 0.75}
    # Kuhn et al. 2023: mean over clusters of −log Σ e^ℓ, not normalised.
    assert kuhn_semantic_entropy([0, 0, 1], ll) == pytest.approx(
        -(math.log(0.6) + math.log(0.4)) / 2
    )
    assert kuhn_semantic_entropy([0, 1], [math.log(0.01), math.log(0.01)]) == pytest.approx(
        -math.log(0.01)
    )


def test_predictive_entropies_and_token_measures():
    assert predictive_entropy([-1.0, -2.0, -3.0]) == pytest.approx(2.0)
    assert length_normalised_predictive_entropy([-4.0, -3.0], [2, 3]) == pytest.approx(1.5)
    lps = [math.log(0.5), math.log(0.25)]
    assert maximum_sequence_probability(lps) == pytest.approx(-math.log(0.125))
    assert perplexity(lps) == pytest.approx(math.sqrt(8))
    assert perplexity([0.0, 0.0]) == 1.0
    assert mean_token_entropy([0.5, 1.5, 1.0]) == pytest.approx(1.0)
    assert max_token_entropy([0.5, 1.5, 1.0]) == 1.5


def test_p_true_uncertainty():
    assert p_true_uncertainty(math.log(0.8)) == pytest.approx(0.2)
    assert p_true_uncertainty(math.log(0.2), math.log(0.6)) == pytest.approx(0.75)
    assert p_true_uncertainty(0.0) == 0.0
    assert p_true_uncertainty(-math.inf, math.log(0.1)) == 1.0
    with pytest.raises(ConfidantError):
        p_true_uncertainty(0.5)
    with pytest.raises(ConfidantError):
        p_true_uncertainty(-math.inf, -math.inf)


def test_normalise_by_log_n():
    assert normalise_by_log_n(math.log(10), 10) == pytest.approx(1.0)
    assert normalise_by_log_n(0.0, 1) == 0.0
    with pytest.raises(ConfidantError):
        normalise_by_log_n(1.0, 0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: semantic_entropy([0, 1], [-1.0]), "one log-likelihood per answer"),
        (lambda: semantic_entropy([0, 1], [-1.0, float("nan")]), "finite"),
        (lambda: discrete_semantic_entropy([]), "non-empty"),
        (lambda: discrete_semantic_entropy([0.5, 1.0]), "integers"),
        (lambda: predictive_entropy([]), "non-empty"),
        (lambda: perplexity([0.3]), "≤ 0"),
        (lambda: mean_token_entropy([-1.0]), "≥ 0"),
        (lambda: length_normalised_predictive_entropy([-1.0], [0]), "positive"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ConfidantError, match=message):
        call()
