from __future__ import annotations

import csv
import io
import json
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfidantError
from uq.cip.benchmark import run_benchmark
from uq.cip.calibration import (
    CalibrationResult,
    calibrate_thresholds,
    check_coverage,
    get_or_calibrate,
    score_histories,
)
from uq.cip.class_sets import load_default_class_set, oracle_posterior_batch, parse_class_set
from uq.cip.conformal import (
    METHODS,
    binary_entropy_bits,
    conformal_threshold,
    entropy_upper_bound,
    posterior_entropy_bits,
    prediction_set,
    should_stop,
)
from uq.cip.game import Game
from uq.cip.selection import draw_hypotheses, select_query


@pytest.fixture(scope="module")
def animals():
    return load_default_class_set()


@pytest.fixture(scope="module")
def oracle(animals):
    return oracle_posterior_batch(animals)


@pytest.fixture(scope="module")
def calibration(animals, oracle):
    return calibrate_thresholds(animals, oracle, alpha=0.1, max_length=20, n_cal=100, seed=0)


class CountingPosterior:
    """Wraps a posterior_batch callable and records every call's histories."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[list[list[tuple[str, str]]]] = []

    def __call__(self, histories):
        self.calls.append([list(h) for h in histories])
        return self.inner(histories)


def noisy_posterior(class_set, strength=3.0):
    """A deterministic but imperfect posterior: the bank oracle tempered by history-seeded
    Dirichlet noise, so the true class is often not the top one."""
    oracle = oracle_posterior_batch(class_set, floor=0.05)

    def posterior_batch(histories):
        base = oracle(histories)
        out = np.empty_like(base)
        for i, h in enumerate(histories):
            # A stable hash: str hashes change between processes (PYTHONHASHSEED).
            seed = zlib.crc32(repr(h).encode())
            noise = np.random.default_rng(seed).dirichlet(np.ones(class_set.n_classes))
            mixed = base[i] ** (1 / strength) * noise
            out[i] = mixed / mixed.sum()
        return out

    return posterior_batch


# --------------------------------------------------------------------------------------------
# conformal_threshold and prediction_set
# --------------------------------------------------------------------------------------------

TEN = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]


@pytest.mark.parametrize(
    "alpha, plain, finite",
    [
        # n = 10. "higher" quantile of scores at 1 − α sits at sorted index ⌈9(1 − α)⌉;
        # the finite-sample rule takes the ⌈11(1 − α)⌉-th smallest score.
        (0.1, 0.05, 0.05),  # index ⌈8.1⌉ = 9 → −0.05; rank ⌈9.9⌉ = 10 → −0.05
        (0.2, 0.1, 0.1),  # index ⌈7.2⌉ = 8 → −0.1; rank ⌈8.8⌉ = 9 → −0.1
        (0.25, 0.2, 0.1),  # index ⌈6.75⌉ = 7 → −0.2; rank ⌈8.25⌉ = 9 → −0.1
        (0.5, 0.4, 0.4),  # index ⌈4.5⌉ = 5 → −0.4; rank ⌈5.5⌉ = 6 → −0.4
        (0.7, 0.6, 0.6),  # index ⌈2.7⌉ = 3 → −0.6; rank ⌈3.3⌉ = 4 → −0.6
    ],
)
def test_conformal_threshold_on_small_array(alpha, plain, finite):
    assert conformal_threshold(TEN, alpha) == pytest.approx(plain)
    assert conformal_threshold(TEN, alpha, finite_sample=True) == pytest.approx(finite)


def test_conformal_threshold_matches_numpy_definition():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=37)
    for alpha in (0.05, 0.1, 0.33):
        expected = -np.quantile(-p, 1 - alpha, method="higher")
        assert conformal_threshold(p, alpha) == expected
        rank = math.ceil(38 * (1 - alpha))
        assert conformal_threshold(p, alpha, finite_sample=True) == np.sort(-p)[rank - 1] * -1


def test_finite_sample_rank_uses_exact_ceiling():
    # (n + 1)(1 − α) = 10 × 0.9 is 9 exactly although the float product is 9.000000000000002
    p = np.arange(1, 10) / 10  # n = 9
    assert conformal_threshold(p, 0.1, finite_sample=True) == pytest.approx(0.1)


def test_finite_sample_too_few_points_gives_full_set():
    p = [0.9, 0.8, 0.7, 0.6, 0.5]  # rank ⌈6 × 0.9⌉ = 6 > 5
    tau = conformal_threshold(p, 0.1, finite_sample=True)
    assert tau == -math.inf
    assert prediction_set([0.0, 0.2, 0.8], tau).all()


def test_prediction_set_is_inclusive_and_batched():
    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    assert prediction_set(probs, 0.3).tolist() == [[True, True, False], [False, False, True]]
    assert prediction_set(probs[0], 0.2).tolist() == [True, True, True]
    with pytest.raises(ConfidantError):
        prediction_set(probs, float("nan"))
    with pytest.raises(ConfidantError):
        prediction_set([[0.5, np.nan]], 0.1)


@pytest.mark.parametrize(
    "probs, alpha",
    [([], 0.1), ([0.5, np.nan], 0.1), ([0.5, 1.5], 0.1), ([[0.5]], 0.1), ([0.5], 0.0), ([0.5], 1)],
)
def test_conformal_threshold_rejects_bad_input(probs, alpha):
    with pytest.raises(ConfidantError):
        conformal_threshold(probs, alpha)


@settings(max_examples=60, deadline=None)
@given(
    p=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60),
    alpha=st.floats(0.01, 0.45),
)
def test_threshold_properties(p, alpha):
    p = np.array(p)
    plain = conformal_threshold(p, alpha)
    finite = conformal_threshold(p, alpha, finite_sample=True)
    # both cover at least 1 − α of their own calibration points
    assert np.mean(p >= plain) >= 1 - alpha - 1e-12
    assert np.mean(p >= finite) >= 1 - alpha - 1e-12
    # for α < 1/2 the finite-sample order statistic is never above the reference one
    assert finite <= plain
    # the threshold is one of the calibration probabilities (or −inf for the full set)
    assert plain in p
    assert finite == -math.inf or finite in p


@pytest.mark.parametrize("finite_sample", [False, True])
def test_coverage_on_synthetic_dirichlet_posteriors(finite_sample):
    """Dirichlet posteriors, true label drawn from each: sets built from a calibration split
    cover fresh draws at ≥ 1 − α (averaged over repetitions, small slack)."""
    rng = np.random.default_rng(0)
    K, alpha, n_cal, n_test = 12, 0.1, 200, 2000

    def draw(n):
        probs = rng.dirichlet(np.full(K, 0.4), size=n)
        labels = np.array([rng.choice(K, p=row) for row in probs])
        return probs, labels

    coverages = []
    for _ in range(20):
        probs, labels = draw(n_cal)
        tau = conformal_threshold(probs[np.arange(n_cal), labels], alpha, finite_sample)
        test_probs, test_labels = draw(n_test)
        sets = prediction_set(test_probs, tau)
        coverages.append(sets[np.arange(n_test), test_labels].mean())
    assert np.mean(coverages) >= 1 - alpha - 0.01
    assert np.mean(coverages) <= 1 - alpha + 0.05  # the sets are not trivially full


# --------------------------------------------------------------------------------------------
# The entropy bound and IP entropy
# --------------------------------------------------------------------------------------------


def test_entropy_upper_bound_hand_computation():
    # α = 0.1, K = 8, n_est = 4: α_n = 0.1 − 1/5 = −0.1
    # h_b(0.1) = −0.1 log2 0.1 − 0.9 log2 0.9 = 0.468995594
    # covered sizes 1, 2, 3: mean log2 = (0 + 1 + 1.584962501)/3 = 0.861654167, × 1.1 = 0.947819584
    # uncovered size 4: log2(8 − 4) = 2, × 0.1 = 0.2
    bound = entropy_upper_bound([1, 2, 4, 3], [True, True, False, True], 0.1, 8, 4)
    assert bound == pytest.approx(0.468995594 + 0.947819584 + 0.2, abs=1e-8)


def test_entropy_upper_bound_empty_groups_add_zero():
    h = binary_entropy_bits(0.2)
    # all covered, all singletons: only h_b remains
    assert entropy_upper_bound([1, 1, 1], [True, True, True], 0.2, 5, 3) == pytest.approx(h)
    # none covered, empty sets: α log2 K
    assert entropy_upper_bound([0, 0], [False, False], 0.2, 5, 3) == pytest.approx(
        h + 0.2 * math.log2(5)
    )


def test_entropy_upper_bound_uses_mean_of_logs_not_log_of_mean():
    b = entropy_upper_bound([1, 4], [True, True], 0.1, 10, 1)  # α_n = 0.1 − 0.5 = −0.4
    assert b == pytest.approx(binary_entropy_bits(0.1) + 1.4 * (0 + 2) / 2)
    assert b != pytest.approx(binary_entropy_bits(0.1) + 1.4 * math.log2(2.5))


@pytest.mark.parametrize(
    "sizes, covered, alpha, k, n_est, message",
    [
        ([1, 2], [True], 0.1, 5, 4, "shape"),
        ([], [], 0.1, 5, 4, "non-empty"),
        ([0], [True], 0.1, 5, 4, "covered draw"),
        ([5], [False], 0.1, 5, 4, "full set"),
        ([6], [True], 0.1, 5, 4, "between 0 and 5"),
        ([1.5], [True], 0.1, 5, 4, "integers"),
        ([1], [True], 0.0, 5, 4, "alpha"),
        ([1], [True], 0.1, 1, 4, "n_classes"),
        ([1], [True], 0.1, 5, 0, "n_est"),
        ([1], [2], 0.1, 5, 4, "booleans"),
    ],
)
def test_entropy_upper_bound_rejects_bad_input(sizes, covered, alpha, k, n_est, message):
    with pytest.raises(ConfidantError, match=message):
        entropy_upper_bound(sizes, covered, alpha, k, n_est)


def test_posterior_entropy_bits():
    assert posterior_entropy_bits(np.full(8, 1 / 8)) == pytest.approx(3.0)
    rows = posterior_entropy_bits([[1.0, 0.0], [0.5, 0.5]])
    assert rows[1] == pytest.approx(1.0)
    assert rows[0] == pytest.approx(-1e-5 * math.log2(1e-5), rel=1e-6)  # the clamp


def test_should_stop():
    assert should_stop([1.0, 1.001, 0.999], 0.01)
    assert not should_stop([1.0, 2.0], 0.01)
    assert not should_stop([1.0, 1.0], None)
    assert should_stop([], 0.01)


# --------------------------------------------------------------------------------------------
# Batched scoring and selection
# --------------------------------------------------------------------------------------------


def test_score_histories_deduplicates_and_uses_cache(animals, oracle):
    counting = CountingPosterior(oracle)
    h1 = [("Is it a bird?", "yes")]
    h2 = [("Is it a bird?", "no")]
    cache: dict = {}
    probs, n = score_histories(counting, [h1, h2, h1, list(h1)], animals.n_classes, cache=cache)
    assert n == 2 and len(counting.calls) == 1 and len(counting.calls[0]) == 2
    assert np.array_equal(probs[0], probs[2])
    probs2, n2 = score_histories(counting, [h2, h1], animals.n_classes, cache=cache)
    assert n2 == 0 and len(counting.calls) == 1
    assert np.array_equal(probs2[0], probs[1])


@pytest.mark.parametrize(
    "returned, message",
    [
        (np.ones((1, 3)) / 3, "shape"),
        (np.full((2, 3), np.nan), "NaN"),
        (np.ones((2, 3)), "sum to 1"),
    ],
)
def test_score_histories_checks_the_posterior(returned, message):
    with pytest.raises(ConfidantError, match=message):
        score_histories(lambda hs: returned, [[("a", "yes")], [("a", "no")]], 3)


@pytest.mark.parametrize("method", ["cip", "ip"])
def test_selection_calls_posterior_once_with_deduplicated_histories(
    animals, oracle, calibration, method
):
    counting = CountingPosterior(oracle)
    answered: list[tuple[str, str]] = []

    def answerer(label, query):
        answered.append((label, query))
        return animals.answer(label, query)

    history = [("Is it a mammal?", "yes")]
    candidates = [q for q in animals.questions if q != "Is it a mammal?"]
    rng = np.random.default_rng(5)
    step = select_query(
        method,
        history,
        candidates,
        animals.classes,
        counting,
        answerer,
        rng,
        tau=calibration.threshold_for_length(2),
        alpha=0.1,
        n_est=8,
    )
    assert len(counting.calls) == 1
    scored = counting.calls[0]
    keys = [tuple(h) for h in scored]
    assert len(set(keys)) == len(keys), "a history was scored twice"
    assert all(h[:1] == history and len(h) == 2 for h in scored)
    labels = step.hypothetical_labels
    expected = {(q, animals.answer(lab, q)) for q in candidates for lab in labels}
    assert {h[1] for h in scored} == expected
    assert step.n_scored == len(expected) < step.n_histories == len(candidates) * 8
    # the answerer is asked once per distinct (label, candidate)
    assert len(answered) == len(set(labels)) * len(candidates)
    # every candidate's bound is the formula applied to its recorded sets
    for j in range(len(candidates)):
        b = entropy_upper_bound(step.set_sizes[j], step.covered[j], 0.1, animals.n_classes, 8)
        assert step.bounds[j] == pytest.approx(b)
    scores = step.bounds if method == "cip" else step.expected_entropies
    assert step.scores == scores
    assert step.chosen == candidates[int(np.argmin(scores))]
    assert step.score_std == pytest.approx(np.std(scores))
    json.dumps(step.to_dict())


def test_ip_prefers_the_balanced_split():
    text = "class,question,answer\n" + "".join(
        f"{c},Is it in the first half?,{'yes' if c in 'ab' else 'no'}\n"
        f"{c},Is it a?,{'yes' if c == 'a' else 'no'}\n"
        for c in "abcd"
    )
    cs = parse_class_set(text)
    step = select_query(
        "ip",
        [],
        list(cs.questions),
        cs.classes,
        oracle_posterior_batch(cs),
        cs.answer,
        np.random.default_rng(0),
        n_est=400,
    )
    assert step.chosen == "Is it in the first half?"
    # 1 bit for the halving question; about ¾ log2 3 ≈ 1.19 bits for the other
    assert step.expected_entropies[0] == pytest.approx(1.0, abs=0.05)
    assert step.expected_entropies[1] > step.expected_entropies[0] + 0.1


def test_random_selection_is_seeded_and_scores_nothing(animals):
    def never(histories):
        raise AssertionError("random selection must not call the posterior")

    picks = [
        select_query(
            "random", [], animals.questions, animals.classes, never, animals.answer, rng
        ).chosen
        for rng in (np.random.default_rng(9), np.random.default_rng(9))
    ]
    assert picks[0] == picks[1]


def test_selection_validates(animals, oracle):
    rng = np.random.default_rng(0)
    with pytest.raises(ConfidantError, match="method"):
        select_query("best", [], ["q"], animals.classes, oracle, animals.answer, rng)
    with pytest.raises(ConfidantError, match="no candidate"):
        select_query("ip", [], [], animals.classes, oracle, animals.answer, rng)
    with pytest.raises(ConfidantError, match="tau"):
        select_query("cip", [], animals.questions, animals.classes, oracle, animals.answer, rng)


def test_draw_hypotheses_modes():
    rng = np.random.default_rng(0)
    uniform = draw_hypotheses(5, 2000, rng)
    assert set(uniform.tolist()) == set(range(5))
    peaked = draw_hypotheses(5, 50, rng, mode="posterior", posterior=[0, 0, 1, 0, 0])
    assert set(peaked.tolist()) == {2}
    with pytest.raises(ConfidantError):
        draw_hypotheses(5, 4, rng, mode="posterior")
    with pytest.raises(ConfidantError):
        draw_hypotheses(5, 4, rng, mode="prior")


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def test_calibration_is_seeded_batched_and_reports_coverage(animals, oracle):
    counting = CountingPosterior(oracle)
    seen = []
    cal = calibrate_thresholds(
        animals,
        counting,
        alpha=0.2,
        max_length=6,
        n_cal=50,
        seed=4,
        progress=lambda k, n: seen.append((k, n)),
    )
    assert len(counting.calls) == 6
    assert [len(c[0]) for c in counting.calls] == [1, 2, 3, 4, 5, 6]
    for calls in counting.calls:
        questions = [q for q, _ in calls[0]]
        assert len(set(questions)) == len(questions), "questions must be drawn without replacement"
    assert seen == [(k, 6) for k in range(1, 7)]
    assert cal.max_length == 6 and len(cal.coverage) == 6
    assert all(c >= 0.8 for c in cal.coverage)
    again = calibrate_thresholds(animals, oracle, alpha=0.2, max_length=6, n_cal=50, seed=4)
    assert again.thresholds == cal.thresholds
    assert CalibrationResult.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    assert cal.class_set_fingerprint == animals.fingerprint()
    with pytest.raises(ConfidantError):
        cal.threshold_for_length(7)


@pytest.mark.parametrize("finite_sample", [False, True])
def test_calibrated_thresholds_cover_fresh_random_histories(animals, finite_sample):
    posterior = noisy_posterior(animals)
    alpha = 0.2
    coverages = []
    for seed in range(4):
        cal = calibrate_thresholds(
            animals,
            posterior,
            alpha=alpha,
            max_length=4,
            n_cal=150,
            seed=seed,
            finite_sample=finite_sample,
        )
        coverages.append(check_coverage(animals, posterior, cal, n_test=300, seed=100 + seed))
    per_length = np.mean(coverages, axis=0)
    assert np.all(per_length >= 1 - alpha - 0.04), per_length
    assert np.all(per_length <= 0.97), "the noisy posterior should not give trivial sets"


def test_get_or_calibrate_with_a_dict_cache_and_without_one(animals, oracle):
    stored: dict = {}

    def cache(fields, compute, **meta):
        key = json.dumps(fields, sort_keys=True)
        if key in stored:
            return stored[key], True
        stored[key] = compute()
        assert meta["class_set_name"] == animals.name
        return stored[key], False

    kw = dict(alpha=0.1, n_cal=20, max_length=3, seed=5)
    first, reused1 = get_or_calibrate(animals, oracle, cache=cache, **kw)
    again, reused2 = get_or_calibrate(animals, oracle, cache=cache, **kw)
    plain, reused3 = get_or_calibrate(animals, oracle, **kw)
    assert (reused1, reused2, reused3) == (False, True, False)
    assert first.to_dict() == again.to_dict() == plain.to_dict()
    assert len(stored) == 1
    get_or_calibrate(animals, oracle, cache=cache, **{**kw, "alpha": 0.2})
    assert len(stored) == 2  # α is part of the key


def test_calibration_validates(animals, oracle):
    with pytest.raises(ConfidantError):
        calibrate_thresholds(animals, oracle, max_length=animals.n_questions + 1)
    with pytest.raises(ConfidantError):
        calibrate_thresholds(animals, oracle, alpha=1.0)
    with pytest.raises(ConfidantError):
        calibrate_thresholds(animals, oracle, n_cal=0)


# --------------------------------------------------------------------------------------------
# The game
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, hypotheses, n_est, truth",
    [
        ("cip", "posterior", 16, "owl"),
        ("cip", "posterior", 16, "cow"),
        ("cip", "posterior", 16, "honeybee"),
        ("ip", "uniform", 4, "giant panda"),
        ("ip", "uniform", 4, "eagle"),
    ],
)
def test_full_game_with_oracle_names_the_class(
    animals, oracle, calibration, method, hypotheses, n_est, truth
):
    game = Game(
        animals,
        oracle,
        calibration,
        method=method,
        n_est=n_est,
        hypotheses=hypotheses,
        max_queries=20,
        epsilon=0.01,
        seed=1,
        truth=truth,
    )
    turns = game.play(lambda q: animals.answer(truth, q))
    assert game.finished and game.stop_reason in ("max_queries", "bounds_settled", "single_class")
    assert len(game.history) <= 20
    assert turns[-1].guess == truth
    assert turns[-1].set_members == [truth]
    assert game.first_correct_turn() is not None
    assert [t.turn for t in turns] == list(range(len(turns)))
    assert turns[0].set_size == animals.n_classes and turns[0].tau is None
    json.dumps(game.to_dict())


def test_human_play_turn_by_turn(animals, oracle, calibration):
    counting = CountingPosterior(oracle)
    game = Game(animals, counting, calibration, method="cip", max_queries=3, seed=2)
    first = game.start()
    assert first.turn == 0 and first.query is None and len(counting.calls) == 1
    with pytest.raises(ConfidantError, match="no question"):
        game.answer("yes")
    q = game.next_question()
    assert q in animals.questions
    assert game.next_question() == q  # still waiting for the answer
    step = game.pending
    rec = game.answer(" Yes. ")
    assert (rec.query, rec.answer, rec.turn) == (q, "yes", 1)
    assert rec.bound == pytest.approx(min(step.bounds))
    assert rec.score_std == pytest.approx(step.score_std)
    assert rec.set_size == len(rec.set_members)
    assert rec.covered is None
    assert rec.tau == calibration.threshold_for_length(1)
    assert sum(p for _, p in rec.posterior_top) <= 1 + 1e-9
    assert rec.posterior_top[0][0] == rec.guess
    # selection makes one batched call; the update reuses it when the answer was simulated
    assert len(counting.calls) <= 3
    while game.next_question() is not None:
        game.answer("no")
    assert game.stop_reason == "max_queries" and len(game.history) == 3
    assert game.next_question() is None
    json.dumps(game.to_dict())


def test_stopping_rule_with_large_epsilon(animals, oracle, calibration):
    game = Game(animals, oracle, calibration, method="ip", epsilon=100.0)
    assert game.next_question() is None
    assert game.stop_reason == "bounds_settled" and len(game.turns) == 1


def test_game_with_open_queries_and_model_answerer(animals, oracle, calibration):
    asked = []

    def propose(history):
        asked.append(len(history))
        return ["Is it a bird?", "Can it fly?", "Is it a bird?"]

    game = Game(
        animals,
        oracle,
        calibration,
        method="ip",
        propose_queries=propose,
        answerer=lambda label, q: "Yes." if animals.answer(label, q) == "yes" else "No.",
        truth="penguin",
    )
    game.play(lambda q: animals.answer("penguin", q))
    assert [q for q, _ in game.history] in (
        ["Is it a bird?", "Can it fly?"],
        ["Can it fly?", "Is it a bird?"],
    )
    assert game.stop_reason == "no_questions_left"


def test_game_validates(animals, oracle, calibration):
    with pytest.raises(ConfidantError):
        Game(animals, oracle, calibration, method="best")
    with pytest.raises(ConfidantError):
        Game(animals, oracle, calibration, max_queries=21)
    with pytest.raises(ConfidantError):
        Game(animals, oracle, calibration, truth="unicorn")
    other = parse_class_set("class,question,answer\na,q,yes\nb,q,no\n")
    with pytest.raises(ConfidantError, match="calibration"):
        Game(other, oracle_posterior_batch(other), calibration)


# --------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------


def test_benchmark_rows_in_table_2_form(animals, oracle, calibration):
    classes = ["dog", "penguin", "frog"]
    kwargs = dict(methods=METHODS, seeds=(0, 1), classes=classes, max_queries=12)
    result = run_benchmark(animals, oracle, calibration, **kwargs)
    assert [r.method for r in result.rows] == ["C-IP α=0.1", "IP", "Random"]
    for row in result.rows:
        assert row.n_games == 6 and row.n_seeds == 2
        assert 0.0 <= row.success_rate <= 1.0
        assert 0.0 <= row.avg_len <= 12
        assert len(row.coverage_per_turn) <= 12
        assert all(0.0 <= c <= 1.0 for c in row.coverage_per_turn)
    ip = result.rows[1]
    assert ip.success_rate == 1.0 and ip.final_accuracy == 1.0
    assert ip.avg_success_len == pytest.approx(ip.avg_len)
    table = result.table()
    assert list(table[0])[:6] == [
        "Method",
        "Q",
        "A",
        "Avg. len",
        "Avg. success len",
        "Success rate",
    ]
    assert table[1]["Success rate"] == "1.00±0.00"
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [r["method"] for r in rows] == ["C-IP α=0.1", "IP", "Random"]
    assert "coverage_turn_1" in rows[0]
    assert len(result.games) == 18
    json.dumps(result.to_dict())
    again = run_benchmark(animals, oracle, calibration, **kwargs)
    assert again.games == result.games


def test_benchmark_validates(animals, oracle, calibration):
    with pytest.raises(ConfidantError):
        run_benchmark(animals, oracle, calibration, methods=("best",))
    with pytest.raises(ConfidantError):
        run_benchmark(animals, oracle, calibration, classes=["unicorn"])


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n_classes=st.integers(2, 12),
    n_candidates=st.integers(1, 5),
    n_est=st.integers(1, 6),
    alpha=st.floats(0.01, 0.49),
)
def test_vectorised_bounds_match_the_public_formula(data, n_classes, n_candidates, n_est, alpha):
    from uq.cip.conformal import entropy_upper_bounds

    covered = np.array(
        data.draw(
            st.lists(st.booleans(), min_size=n_candidates * n_est, max_size=n_candidates * n_est)
        )
    ).reshape(n_candidates, n_est)
    n = n_candidates * n_est
    when_covered = data.draw(st.lists(st.integers(1, n_classes), min_size=n, max_size=n))
    when_not = data.draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n))
    sizes = np.where(covered.ravel(), when_covered, when_not).reshape(covered.shape)
    fast = entropy_upper_bounds(sizes, covered, alpha, n_classes, n_est)
    for j in range(n_candidates):
        assert fast[j] == pytest.approx(
            entropy_upper_bound(sizes[j], covered[j], alpha, n_classes, n_est)
        )
