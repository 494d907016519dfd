"""Remote NLI and embeddings against a real server process on 127.0.0.1:
``python -m cli serve-encoders`` serving the tiny random NLI cross-encoder and all-MiniLM-L6-v2.
What ``RemoteNLI`` and ``RemoteEmbedder`` read back over HTTP must equal the in-process models
on the same weights."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from backends.embeddings_remote import RemoteEmbedder
from backends.nli import NLIModel
from backends.nli_remote import RemoteNLI, parse_labels
from core.errors import BackendError, ConfidantError
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"

PAIRS = [
    ("The capital of France is Paris.", "Paris is in France."),
    ("A cat sat.", "A dog sat on the mat near the door of the old house by the river."),
    ("It rained all day in the city and the streets were wet and empty.", "It rained."),
    ("Yes.", "No."),
    ("The Danube flows into the Black Sea.", "The Danube drains into the Black Sea."),
] * 3 + [(f"Answer number {i}.", f"The answer is {i * 7}.") for i in range(10)]


@pytest.fixture(scope="module")
def server_url(tiny_nli_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve-encoders") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("CONFIDANT_SERVE_API_KEY", None)
    argv = [sys.executable, "-m", "cli", "serve-encoders", "--nli-model", str(tiny_nli_dir)]
    argv += ["--embedding-model", EMBEDDER, "--port", str(port), "--device", "cpu"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def local_nli(tiny_nli_dir):
    return NLIModel(str(tiny_nli_dir), device="cpu").load()


@pytest.mark.parametrize(("batch_size", "concurrency"), [(1, 1), (4, 8), (64, 2)])
def test_tei_predict_equals_the_in_process_model(server_url, local_nli, batch_size, concurrency):
    remote = RemoteNLI(server_url, batch_size=batch_size, concurrency=concurrency).load()
    assert remote.protocol == "tei"  # found by GET /info; labels read from its id2label
    got, want = remote.probs(PAIRS), local_nli.probs(PAIRS)
    assert got.shape == (len(PAIRS), 3)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert remote.labels(PAIRS) == local_nli.labels(PAIRS)
    assert remote.probs([]).shape == (0, 3) and remote.labels([]) == []


def _joined_by_hand(nli: NLIModel, text: str) -> np.ndarray:
    with torch.inference_mode():
        logits = nli._model(**nli._tokenizer(text, return_tensors="pt")).logits[0]
    p = torch.softmax(logits, -1).numpy()
    return p[nli._order]  # (contradiction, neutral, entailment)


def test_vllm_classify_with_given_labels(server_url, local_nli):
    remote = RemoteNLI(
        server_url,
        protocol="vllm",
        labels="entailment,neutral,contradiction",  # the tiny model's id2label, in order
        batch_size=3,
        concurrency=4,
        pair_separator=" | ",
    )
    got = remote.probs(PAIRS)
    want = np.stack([_joined_by_hand(local_nli, f"{p} | {h}") for p, h in PAIRS])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert remote.labels(PAIRS) == [int(k) for k in want.argmax(1)]


def test_vllm_without_labels_is_a_clear_error(server_url):
    with pytest.raises(ConfidantError, match="--nli-labels"):
        RemoteNLI(server_url, protocol="vllm").probs(PAIRS[:2])
    labels = "entailment,neutral,contradiction"
    with pytest.raises(ConfidantError, match="--nli-pair-separator"):
        RemoteNLI(server_url, protocol="vllm", labels=labels).probs(PAIRS[:2])


def test_wrong_label_order_is_a_clear_error(server_url):
    wrong = "contradiction,neutral,entailment"  # the server's model puts entailment first
    with pytest.raises(ConfidantError, match="contradicts the label order"):
        RemoteNLI(server_url, labels=wrong).load()
    with pytest.raises(ConfidantError, match="is not the label order"):
        RemoteNLI(server_url, protocol="vllm", labels=wrong, pair_separator=" ").probs(PAIRS)


def test_parse_labels():
    assert parse_labels("Entailment, neutral,CONTRADICTION") == [
        "Entailment",
        "neutral",
        "CONTRADICTION",
    ]
    assert parse_labels(None) is None and parse_labels("  ") is None
    for bad in ("entailment,neutral", "a,b,c", "entailment,neutral,contradiction,other"):
        with pytest.raises(ConfidantError, match="--nli-labels"):
            parse_labels(bad)


def test_server_errors_are_clear(server_url):
    with pytest.raises(BackendError, match="HTTP 404"):
        RemoteEmbedder(server_url + "/nowhere", EMBEDDER, max_attempts=1).embed(["a"])
    with pytest.raises(BackendError, match="HTTP 4"):
        RemoteNLI(server_url + "/nowhere", protocol="tei", max_attempts=1).load()
    port = free_port()
    with pytest.raises(BackendError, match="Could not reach"):
        RemoteNLI(
            f"http://127.0.0.1:{port}", protocol="tei", max_attempts=2, sleep=lambda s: None
        ).load()


def test_embeddings_equal_the_in_process_model(server_url, minilm):
    texts = [f"sentence number {i} about {w}" for i, w in enumerate("abcdefghijklm")]
    remote = RemoteEmbedder(server_url + "/v1", EMBEDDER, batch_size=3, concurrency=4)
    got, want = remote.embed(texts), minilm.embed(texts)
    assert got.shape == want.shape
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(remote.cosine_matrix(texts), minilm.cosine_matrix(texts), atol=1e-4)


def test_semantic_entropy_with_remote_nli_equals_in_process(server_url, local_nli, tiny_lm):
    from uq.semantic.entailment import make_entailment
    from uq.semantic.pipeline import run_semantic_entropy

    def run(nli):
        return run_semantic_entropy(
            tiny_lm,
            "What is the capital of France?",
            make_entailment("nli", nli=nli),
            n=5,
            seed=3,
            max_new_tokens=8,
        )

    remote = run(RemoteNLI(server_url, batch_size=2, concurrency=4))
    local = run(local_nli)
    assert remote.texts == local.texts
    assert remote.clustering.labels == local.clustering.labels
    # The remote probabilities equal the local ones to ~1e-7, which the similarity measures
    # (SAR, semantic density) carry into their values: equal to 1e-6, not bit for bit.
    assert remote.measures.keys() == local.measures.keys()
    for key, value in local.measures.items():
        got = remote.measures[key]
        assert got["note"] == value["note"], key
        for part in ("value", "per_log_n"):
            if value[part] is None:
                assert got[part] is None, key
            else:
                assert got[part] == pytest.approx(value[part], rel=1e-6, abs=1e-6), key


def test_the_registry_builds_remote_backends(server_url):
    from backends.registry import BackendConfig, Backends

    backends = Backends(
        BackendConfig(
            model="tiny-random",
            nli_base_url=server_url,
            embedding_base_url=server_url + "/v1",
            embedding_model=EMBEDDER,
        )
    )
    assert isinstance(backends.nli(), RemoteNLI) and isinstance(backends.embedder(), RemoteEmbedder)
    assert backends.default_entailment().method == "nli"
    assert server_url in backends.describe()["nli"]
    assert backends.nli().probs(PAIRS[:2]).shape == (2, 3)


def test_batches_retries_and_input_order_with_a_busy_server(monkeypatch):
    """A mock TEI server that answers 503 (with Retry-After) to every first try of a batch and
    delays batches unevenly: every pair comes back once, in input order, in batches of the
    requested size, and the wait the server asked for is honoured."""
    import json
    import threading

    calls, waits, lock = [], [], threading.Lock()
    seen: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/info":
            names = {"0": "entailment", "1": "neutral", "2": "contradiction"}
            return httpx.Response(200, json={"model_type": {"classifier": {"id2label": names}}})
        pairs = json.loads(request.content)["inputs"]
        key = pairs[0][0]
        with lock:
            first = key not in seen
            seen.add(key)
            if not first:
                calls.append(len(pairs))
        if first:
            return httpx.Response(503, headers={"retry-after": "0.25"}, text="busy")
        time.sleep(0.01 * (len(calls) % 3))
        rows = []
        for premise, _ in pairs:
            k = int(premise.split()[1])
            p = np.array([k + 1.0, 1.0, 2.0])
            p /= p.sum()
            rows.append(
                [
                    {"label": n, "score": float(v)}
                    for n, v in zip(("contradiction", "neutral", "entailment"), p, strict=True)
                ]
            )
        return httpx.Response(200, json=rows)

    pairs = [(f"premise {k}", "h") for k in range(23)]
    remote = RemoteNLI(
        "http://tei.invalid",
        batch_size=5,
        concurrency=4,
        transport=httpx.MockTransport(handler),
        sleep=waits.append,
    )
    got = remote.probs(pairs)
    want = np.array([[k + 1.0, 1.0, 2.0] for k in range(23)])
    want /= want.sum(1, keepdims=True)
    np.testing.assert_allclose(
        got, want, atol=1e-12
    )  # columns (contradiction, neutral, entailment)
    assert sorted(calls) == [3, 5, 5, 5, 5] and waits == [0.25] * 5


def test_an_api_key_is_sent_from_the_environment_and_required(local_nli, minilm, monkeypatch):
    import threading

    import uvicorn

    from backends.serve_encoders import create_encoder_app

    port = free_port()
    app = create_encoder_app(local_nli, minilm, api_key="s3cret-key")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        monkeypatch.delenv("CONFIDANT_NLI_API_KEY", raising=False)
        with pytest.raises(BackendError, match="HTTP 401"):
            RemoteNLI(url, protocol="tei", max_attempts=1).load()
        monkeypatch.setenv("CONFIDANT_NLI_API_KEY", "s3cret-key")
        monkeypatch.setenv("CONFIDANT_EMBEDDING_API_KEY", "s3cret-key")
        np.testing.assert_allclose(
            RemoteNLI(url).probs(PAIRS[:4]), local_nli.probs(PAIRS[:4]), atol=1e-5
        )
        assert RemoteEmbedder(url + "/v1", EMBEDDER).embed(["a b"]).shape == (1, 384)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_serve_encoders_needs_a_model(capsys):
    from cli.__main__ import main

    assert main(["serve-encoders"]) == 2
    assert "--nli-model, --embedding-model or both" in capsys.readouterr().err


def test_flags_and_environment_reach_the_backend_config(monkeypatch):
    import argparse

    import app
    from cli.common import add_model_arguments, backends_from_args

    monkeypatch.setenv("CONFIDANT_NLI_BASE_URL", "http://nli.example:8100")
    monkeypatch.setenv("CONFIDANT_NLI_LABELS", "entailment,neutral,contradiction")
    monkeypatch.setenv("CONFIDANT_EMBEDDING_BASE_URL", "http://emb.example:8200/v1")
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    cfg = backends_from_args(parser.parse_args([])).config
    assert cfg.nli_base_url == "http://nli.example:8100"
    assert cfg.nli_labels == "entailment,neutral,contradiction"
    assert cfg.embedding_base_url == "http://emb.example:8200/v1"
    flags = ["--nli-base-url", "http://a:1", "--nli-labels", "x,y,z"]
    cfg = backends_from_args(parser.parse_args(flags)).config
    assert (cfg.nli_base_url, cfg.nli_labels) == ("http://a:1", "x,y,z")
    args = app.parse_args(["--embedding-base-url", "http://b:2/v1"])
    assert args.embedding_base_url == "http://b:2/v1"
    assert args.nli_base_url == "http://nli.example:8100"
    assert args.nli_labels == "entailment,neutral,contradiction"
