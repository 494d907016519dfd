"""NLI (entailment) from a served cross-encoder, with the interface of ``backends.nli.NLIModel``.

Two protocols, chosen with ``protocol`` ("auto" asks ``GET /info`` first):

- Hugging Face text-embeddings-inference (``"tei"``): ``POST /predict`` with a batch of
  ``[premise, hypothesis]`` pairs; the reply names each class, and ``GET /info`` gives the
  model's ``id2label``, so the label order is read from the server.
- vLLM's classification API (``"vllm"``, a model served with ``--task classify``):
  ``POST /classify`` with ``input`` a list of texts; each reply has ``probs`` in the model's
  output order and ``label``, the name of the most probable class. vLLM takes single texts, so
  each pair is sent as ``premise + pair_separator + hypothesis`` (``--nli-pair-separator``,
  the model's own separator: ``"[SEP]"`` for DeBERTa, ``"</s></s>"`` for RoBERTa; required, as
  a wrong one silently changes what the model reads). vLLM does not publish ``id2label``: the order comes from
  ``labels`` (``--nli-labels entailment,neutral,contradiction``), and every reply's ``label``
  is checked against it.

The label order is never guessed: when neither the server nor ``labels`` names the three MNLI
classes, the first call raises a :class:`ConfidantError` saying what to pass. Pairs go
``batch_size`` to a request, requests up to ``concurrency`` at once
(:mod:`backends.requests_pool`), with retries on 429, 5xx and connection errors.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np

from backends.nli import CONTRADICTION, ENTAILMENT, NEUTRAL, label_order
from backends.requests_pool import (
    BACKOFF_S,
    CONCURRENCY_ENV,
    DEFAULT_CONCURRENCY,
    MAX_ATTEMPTS,
    RETRY_STATUSES,
    RequestPool,
    check_concurrency,
    retry_wait,
)
from core.errors import BackendError, ConfidantError
from core.secrets import redact, register, register_url, safe_url, url_auth

NLI_KEY_ENV = "CONFIDANT_NLI_API_KEY"
DEFAULT_NLI_BATCH = 32
PROTOCOLS = ("auto", "tei", "vllm")


def parse_labels(text: str | Sequence[str] | None) -> list[str] | None:
    """``"entailment,neutral,contradiction"`` → the model's class names in output order, or
    None; it must name contradiction, neutral and entailment once each."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    try:
        label_order(dict(enumerate(names)))
    except ConfidantError:
        raise ConfidantError(
            f"--nli-labels must name contradiction, neutral and entailment in the model's output "
            f"order, separated by commas, got {text!r}"
        ) from None
    if len(names) != 3:
        raise ConfidantError(f"--nli-labels must name exactly three classes, got {text!r}")
    return names


class HTTPJSON:
    """One pooled ``httpx`` client for one server, with retries and clear, redacted errors."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key_env: str,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        concurrency: int | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_s: float = BACKOFF_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.concurrency = check_concurrency(
            concurrency
            if concurrency is not None
            else os.environ.get(CONCURRENCY_ENV, DEFAULT_CONCURRENCY)
        )
        self.map = RequestPool(self.concurrency).map
        self.max_attempts, self.backoff_s, self._sleep = max(1, int(max_attempts)), backoff_s, sleep
        register_url(base_url)
        self.url = safe_url(base_url).rstrip("/")
        key = os.environ.get(api_key_env)
        register(key)
        self._client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=timeout,
            transport=transport,
            auth=url_auth(base_url),
            limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
        )

    def request(self, method: str, path: str, payload: dict | None = None) -> Any:
        try:
            return self._request(method, path, payload)
        except BackendError as exc:
            raise BackendError(redact(str(exc))) from None

    def _request(self, method: str, path: str, payload: dict | None) -> Any:
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                r = self._client.request(method, path, json=payload)
            except httpx.TransportError as exc:
                if not last:
                    self._sleep(retry_wait(attempt, None, self.backoff_s))
                    continue
                raise BackendError(
                    f"Could not reach the server at {self.url} ({exc.__class__.__name__}: {exc}; "
                    f"{attempt} attempt(s)). Fix: check the URL and that the server is running."
                ) from exc
            if r.status_code in RETRY_STATUSES and not last:
                self._sleep(retry_wait(attempt, r.headers.get("retry-after"), self.backoff_s))
                continue
            if r.status_code != 200:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise BackendError(
                    f"The server at {self.url} answered HTTP {r.status_code} for {path}{tries}: "
                    f"{redact(r.text)[:300]}"
                )
            try:
                return r.json()
            except ValueError as exc:
                raise BackendError(
                    f"The server at {self.url} sent a reply that is not JSON"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


class RemoteNLI:
    """``probs(pairs)`` → (n, 3) array of p(contradiction), p(neutral), p(entailment);
    ``labels(pairs)`` → argmax, like ``backends.nli.NLIModel``, computed by a server."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        labels: str | Sequence[str] | None = None,
        protocol: str = "auto",
        batch_size: int = DEFAULT_NLI_BATCH,
        pair_separator: str | None = None,
        concurrency: int | None = None,
        api_key_env: str = NLI_KEY_ENV,
        **http: Any,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ConfidantError(f"NLI protocol must be one of {', '.join(PROTOCOLS)}")
        if int(batch_size) < 1:
            raise ConfidantError(f"the NLI batch size must be at least 1, got {batch_size}")
        self.http = HTTPJSON(base_url, api_key_env=api_key_env, concurrency=concurrency, **http)
        self.model = model
        self.model_id = model or f"NLI @ {self.http.url}"
        self.given_labels = parse_labels(labels)
        self.protocol = protocol
        self.batch_size = int(batch_size)
        self.pair_separator = pair_separator
        self._names: list[str] | None = None  # class names in the model's output order
        self._lock = threading.Lock()

    # -- set-up: which protocol, which label order ---------------------------------------------

    def load(self) -> RemoteNLI:
        if self._names is None:
            with self._lock:
                if self._names is None:
                    self._names = self._discover()
        return self

    def _discover(self) -> list[str]:
        info = None
        if self.protocol in ("auto", "tei"):
            try:
                info = self.http.request("GET", "/info")
            except BackendError:
                if self.protocol == "tei":
                    raise
            if info is not None and not (isinstance(info, dict) and "model_type" in info):
                if self.protocol == "tei":
                    raise BackendError(f"The server at {self.http.url} /info is not TEI's")
                info = None
        self.protocol = "tei" if info is not None else "vllm"
        server_names = None
        if info is not None:
            if self.model is None and isinstance(info.get("model_id"), str):
                self.model_id = info["model_id"]
            kind = info.get("model_type") or {}
            classifier = kind.get("classifier") if isinstance(kind, dict) else None
            if not isinstance(classifier, dict) or not classifier.get("id2label"):
                raise ConfidantError(
                    f"The server at {self.http.url} does not serve a classifier (its /info has "
                    "no model_type.classifier.id2label): serve an MNLI cross-encoder there."
                )
            id2label = classifier["id2label"]
            server_names = [str(id2label[k]) for k in sorted(id2label, key=int)]
        return self._check_names(server_names)

    def _check_names(self, server_names: list[str] | None) -> list[str]:
        given = self.given_labels
        if server_names is not None:
            if given is not None and [n.lower() for n in given] != [
                n.lower() for n in server_names
            ]:
                try:
                    label_order(dict(enumerate(server_names)))
                except ConfidantError:
                    return given  # the server's names say nothing (LABEL_0 …): the flag decides
                raise ConfidantError(
                    f"--nli-labels {','.join(given)} contradicts the label order the server at "
                    f"{self.http.url} reports ({','.join(server_names)}). Fix: drop --nli-labels "
                    "or correct it."
                )
            try:
                label_order(dict(enumerate(server_names)))
                return server_names
            except ConfidantError:
                if given is None:
                    raise ConfidantError(
                        f"The NLI model at {self.http.url} names its classes "
                        f"{','.join(server_names)}, not contradiction, neutral and entailment. "
                        "Fix: pass --nli-labels with the three names in its output order, e.g. "
                        "--nli-labels contradiction,neutral,entailment."
                    ) from None
                return given
        if given is None:
            raise ConfidantError(
                f"The label order of the NLI model at {self.http.url} is unknown: vLLM's "
                "classification API does not publish id2label. Fix: pass --nli-labels with the "
                "model's class names in output order (its config.json id2label), e.g. "
                "--nli-labels contradiction,neutral,entailment (env CONFIDANT_NLI_LABELS)."
            )
        return given

    # -- inference -------------------------------------------------------------------------------

    def probs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.load()
        pairs = [(str(p), str(h)) for p, h in pairs]
        if not pairs:
            return np.zeros((0, 3))
        order = label_order(dict(enumerate(self._names)))
        ask = self._tei if self.protocol == "tei" else self._vllm
        batches = self.http.map(
            lambda idx: ask([pairs[i] for i in idx]), _chunks(len(pairs), self.batch_size)
        )
        out = np.concatenate(batches, axis=0)
        return out[:, order]

    def labels(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        return [int(i) for i in self.probs(pairs).argmax(1)] if pairs else []

    def _tei(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        reply = self.http.request(
            "POST", "/predict", {"inputs": [list(p) for p in pairs], "truncate": True}
        )
        if len(pairs) == 1 and reply and isinstance(reply[0], dict):
            reply = [reply]  # one pair may come back unbatched
        if not isinstance(reply, list) or len(reply) != len(pairs):
            raise BackendError(
                f"The server at {self.http.url} sent {len(reply or [])} "
                f"predictions for {len(pairs)} pairs"
            )
        index = {n.lower(): i for i, n in enumerate(self._names)}
        rows = np.zeros((len(pairs), len(self._names)))
        for r, preds in enumerate(reply):
            for pred in preds:
                name = str(pred.get("label", "")).lower()
                if name not in index:
                    raise BackendError(
                        f"The server at {self.http.url} sent the class {pred.get('label')!r}, "
                        f"not one of {', '.join(self._names)}"
                    )
                rows[r, index[name]] = float(pred["score"])
        return rows

    def _vllm(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        if not self.pair_separator:
            raise ConfidantError(
                f"The NLI server at {self.http.url} speaks vLLM's classification API, which "
                "takes single texts: pass --nli-pair-separator with the model's separator "
                "between premise and hypothesis ('[SEP]' for DeBERTa, '</s></s>' for RoBERTa; "
                "env CONFIDANT_NLI_PAIR_SEPARATOR)."
            )
        body: dict[str, Any] = {"input": [p + self.pair_separator + h for p, h in pairs]}
        if self.model:
            body["model"] = self.model
        reply = self.http.request("POST", "/classify", body)
        data = sorted(reply.get("data") or [], key=lambda d: d.get("index", 0))
        if len(data) != len(pairs):
            raise BackendError(
                f"The server at {self.http.url} sent {len(data)} classifications for "
                f"{len(pairs)} pairs"
            )
        rows = np.asarray([d["probs"] for d in data], dtype=float)
        if rows.shape[1] != len(self._names):
            raise ConfidantError(
                f"The NLI model at {self.http.url} has {rows.shape[1]} classes; --nli-labels "
                f"names {len(self._names)}"
            )
        for d, row in zip(data, rows, strict=True):
            said = d.get("label")
            if said is not None and str(said).lower() != self._names[int(row.argmax())].lower():
                raise ConfidantError(
                    f"--nli-labels {','.join(self._names)} is not the label order of the model "
                    f"at {self.http.url}: it calls class {int(row.argmax())} {said!r}. Fix: "
                    "pass the names of its config.json id2label in order."
                )
        return rows


__all__ = ["CONTRADICTION", "ENTAILMENT", "NEUTRAL", "RemoteNLI", "parse_labels", "HTTPJSON"]
