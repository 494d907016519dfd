import math

import pytest

from backends.base import Generation, SamplingParams, TokenRecord
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
