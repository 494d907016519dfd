"""The NLI cross-encoder wrapper: label order from the config, batching by length."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from backends.nli import CONTRADICTION, ENTAILMENT, NEUTRAL, NLIModel, label_order, token_batches
from core.errors import ModelLoadError


@given(
    lengths=st.lists(st.integers(1, 600), max_size=60),
    max_rows=st.integers(1, 40),
    max_tokens=st.integers(1, 4000),
)
def test_token_batches_cover_every_pair_once_within_the_limits(lengths, max_rows, max_tokens):
    batches = token_batches(lengths, max_rows, max_tokens)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)  # shortest first, so little padding
    for batch in batches:
        assert 1 <= len(batch) <= max_rows
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= max_tokens or len(batch) == 1


def test_token_batches_split_long_pairs_more_finely():
    assert token_batches([100] * 8, 32, 400) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert token_batches([10] * 8, 3, 10_000) == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert token_batches([900, 5], 32, 512) == [[1], [0]]  # too long alone: its own batch
    with pytest.raises(ValueError):
        token_batches([1], 0, 10)


def test_label_order_is_read_from_the_config():
    assert label_order({0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}) == [0, 1, 2]
    assert label_order({"0": "entailment", "1": "neutral", "2": "contradiction"}) == [2, 1, 0]
    with pytest.raises(ModelLoadError, match="contradiction, neutral and entailment"):
        label_order({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})


PAIRS = [
    ("The capital of France is Paris.", "Paris is in France."),
    ("A cat sat.", "A dog sat on the mat near the door of the old house by the river."),
    ("It rained all day in the city and the streets were wet and empty.", "It rained."),
    ("Yes.", "No."),
    ("The Danube flows into the Black Sea.", "The Danube drains into the Black Sea."),
]


def _by_hand(nli: NLIModel, premise: str, hypothesis: str) -> np.ndarray:
    """One unpadded forward pass, softmax, columns put in (contradiction, neutral, entailment)
    order by reading id2label here."""
    tok, model = nli._tokenizer, nli._model
    with torch.inference_mode():
        logits = model(**tok(premise, hypothesis, return_tensors="pt")).logits[0]
    p = torch.softmax(logits, -1).numpy()
    names = {v.lower(): int(k) for k, v in model.config.id2label.items()}
    return p[[names["contradiction"], names["neutral"], names["entailment"]]]


@pytest.mark.parametrize(("rows", "tokens"), [(1, 1), (2, 60), (32, 100_000)])
def test_probs_equal_single_unpadded_passes_in_input_order(tiny_nli_dir, rows, tokens):
    nli = NLIModel(str(tiny_nli_dir), batch_size=rows, max_batch_tokens=tokens).load()
    got = nli.probs(PAIRS)
    want = np.stack([_by_hand(nli, p, h) for p, h in PAIRS])
    assert got.shape == (len(PAIRS), 3)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert nli.labels(PAIRS) == [int(k) for k in want.argmax(1)]
    assert set(nli.labels(PAIRS)) <= {CONTRADICTION, NEUTRAL, ENTAILMENT}


def test_empty_input_and_device_defaults(tiny_nli_dir):
    nli = NLIModel(str(tiny_nli_dir))
    assert nli.max_batch_tokens > 0 and nli.batch_size > 0
    assert nli.probs([]).shape == (0, 3) and nli.labels([]) == []


def test_a_model_that_will_not_load_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError):
        NLIModel(str(tmp_path / "nowhere")).load()


def test_nli_unavailable_reason_local_directories(tmp_path):
    from backends.nli import nli_unavailable_reason

    (tmp_path / "config.json").write_text("{}")
    assert nli_unavailable_reason(str(tmp_path)) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "config.json" in nli_unavailable_reason(str(empty))
    assert "no directory" in nli_unavailable_reason(str(tmp_path / "missing"))


def test_nli_unavailable_offline_hub_id_says_why(monkeypatch):
    from backends.nli import nli_unavailable_reason

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reason = nli_unavailable_reason("someone/not-cached-mnli")
    assert "not in the local Hugging Face cache" in reason and "HF_HUB_OFFLINE" in reason


def test_default_entailment_falls_back_to_embeddings_offline_and_says_why(monkeypatch, tmp_path):
    from backends.registry import BackendConfig, Backends

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    default = Backends(BackendConfig(model="smollm2-135m")).default_entailment()
    assert default.method == "embedding"
    assert "deberta-large-mnli" in default.reason and "--nli-model" in default.message
    # tiny-random brings its own NLI model; a model the user names is always used.
    assert Backends(BackendConfig(model="tiny-random")).default_entailment().method == "nli"
    named = Backends(BackendConfig(model="smollm2-135m", nli_model=str(tmp_path / "x")))
    assert named.default_entailment().method == "nli"
    (tmp_path / "config.json").write_text("{}")
    cached = Backends(BackendConfig(model="smollm2-135m"))
    monkeypatch.setattr("backends.registry.DEFAULT_NLI", str(tmp_path))
    assert cached.default_entailment().method == "nli"


def test_nli_load_error_points_to_nli_fixes_not_the_generator(tmp_path):
    from backends.nli import NLIModel

    with pytest.raises(ModelLoadError) as info:
        NLIModel(str(tmp_path / "missing")).load()
    text = str(info.value)
    assert "--nli-model" in text and "--entailment embedding" in text
    assert "smollm2" not in text and "tiny-random" not in text
