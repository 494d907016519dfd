import math

import pytest

from backends.base import MAX_SEED, Generation, SamplingParams, TokenRecord, check_seed
from core.errors import ConfidantError


def test_generation_likelihoods_and_round_trip():
    g = Generation(
        text="ab",
        tokens=[
            TokenRecord(text="a", logprob=-1.0, entropy=0.5, varentropy=0.1, top=[("a", 0.37)]),
            TokenRecord(text="b", logprob=-3.0, entropy=1.5, varentropy=0.2),
        ],
    )
    assert g.total_logprob == -4.0
    assert g.mean_logprob == -2.0
    assert math.isclose(g.tokens[0].probability, math.exp(-1.0))
    assert g.tokens[1].surprisal == 3.0
    back = Generation.from_dict(g.to_dict())
    assert back == g


def test_empty_generation_has_zero_mean():
    assert Generation(text="", tokens=[]).mean_logprob == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"n": 1000},
        {"temperature": -0.1},
        {"temperature": float("nan")},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_k": -1},
        {"max_new_tokens": 0},
    ],
)
def test_sampling_params_rejects_out_of_range(kwargs):
    with pytest.raises(ConfidantError):
        SamplingParams(**kwargs).validate()


def test_sampling_params_drops_empty_stop_strings():
    assert SamplingParams(stop=["", "\n"]).validate().stop == ["\n"]


SEED_MESSAGE = "Seed must be a whole number from 0 to 4294967295"


@pytest.mark.parametrize(
    "seed",
    [2**64, 2**32, -1, 7.5, float("nan"), "1e400", True, 10**5000],
    ids=["2**64", "2**32", "-1", "7.5", "nan", "1e400", "True", "10**5000"],
)
def test_a_seed_outside_32_bits_is_refused_naming_the_field(seed):
    with pytest.raises(ConfidantError, match=SEED_MESSAGE):
        SamplingParams(seed=seed).validate()
    with pytest.raises(ConfidantError, match="Calibration seed must be a whole number from 0"):
        check_seed(seed, "calibration seed")


def test_seeds_in_range_are_whole_numbers():
    assert MAX_SEED == 2**32 - 1
    assert SamplingParams(seed=MAX_SEED).validate().seed == MAX_SEED
    assert [check_seed(v) for v in (0, "7", " 8 ", 9.0, MAX_SEED)] == [0, 7, 8, 9, MAX_SEED]
