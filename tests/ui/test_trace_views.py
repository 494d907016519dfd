"""The Generate views' entropy colours and the cut-answer warning, without a model."""

from __future__ import annotations

import pytest

from backends.base import Generation, TokenRecord
from ui.plots.trace import ENTROPY_COLOUR_MAX_NATS, cut_note, entropy_highlights


def _gen(entropies, finish="length") -> Generation:
    tokens = [
        TokenRecord(text=f"t{i}", logprob=-0.5, entropy=h, varentropy=0.0)
        for i, h in enumerate(entropies)
    ]
    return Generation(text="".join(t.text for t in tokens), tokens=tokens, finish_reason=finish)


def test_entropy_colours_are_on_one_scale_from_zero_nats():
    # the same token entropy gets the same colour whatever else is in the answer
    low = entropy_highlights(_gen([0.0, 0.3]))
    high = entropy_highlights(_gen([0.3, 6.0]))
    assert low[1][1] == high[0][1] == pytest.approx(0.3 / ENTROPY_COLOUR_MAX_NATS)
    assert low[0][1] == 0.0 and high[1][1] == 1.0  # capped at the legend's top
    assert all(0.0 <= s <= 1.0 for _, s in low + high)


def test_cut_note_only_for_an_answer_stopped_by_the_token_limit():
    assert "64-token limit" in cut_note(_gen([1.0] * 3), 64)
    assert cut_note(_gen([1.0] * 3, finish="stop"), 64) is None
    assert cut_note(_gen([], finish="length"), 64) is None  # nothing generated: nothing cut
    assert cut_note(None, 64) is None


def test_inv_entropy_answers_cut_at_the_limit_are_flagged():
    from types import SimpleNamespace

    from ui.plots.inv import response_rows

    run = SimpleNamespace(
        responses=[["Paris is", "Paris."]],
        generations=[[_gen([1.0] * 4), _gen([1.0] * 2, finish="stop")]],
        params={"max_new_tokens": 4},
        semantic_entropy={"cluster_ids_all": [0, 0]},
    )
    cut, whole = response_rows(run)
    assert cut[3] == "Paris is" and cut[4] == "✂ cut at the 4-token limit"
    assert whole[3:] == ["Paris.", ""]
