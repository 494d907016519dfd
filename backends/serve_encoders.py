"""Serve an NLI cross-encoder and a sentence embedder over the protocols that
``backends.nli_remote`` and ``backends.embeddings_remote`` speak, backed by the in-process models.

    python -m cli serve-encoders --nli-model tiny-random-nli --port 8100
    python app.py --nli-base-url http://127.0.0.1:8100 --embedding-base-url http://127.0.0.1:8100/v1

Routes (each answers only when its model was given):

- ``GET /info``: text-embeddings-inference's, ``model_type.classifier`` with ``id2label`` and
  ``label2id`` from the NLI model's config;
- ``POST /predict``: TEI's, ``inputs`` a pair or a batch of ``[premise, hypothesis]`` pairs →
  for each, every class's ``{"label", "score"}`` (softmax), most probable first;
- ``POST /classify`` (and ``/v1/classify``): vLLM's, ``input`` a text or a list of texts →
  ``data[i]`` with ``probs`` in the model's output order, ``label`` (the most probable class)
  and ``num_classes``;
- ``POST /v1/embeddings``: the OpenAI protocol's, ``input`` a text or a list of texts;
- ``GET /v1/models``.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from backends.nli import MAX_LENGTH
from backends.serve_params import RequestError


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": "Validation"}, status_code=status)


def _texts(value: Any, field: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(t, str) for t in value):
        return value
    raise RequestError(f"{field} must be a string or a non-empty list of strings")


class EncoderServer:
    """The model work behind the routes, one batch at a time per model."""

    def __init__(
        self,
        nli=None,
        embedder=None,
        *,
        nli_name: str | None = None,
        embedding_name: str | None = None,
    ) -> None:
        self.nli = nli.load() if nli is not None else None
        self.embedder = embedder.load() if embedder is not None else None
        self.nli_name = nli_name or getattr(nli, "model_id", None)
        self.embedding_name = embedding_name or getattr(embedder, "model_id", None)
        self._nli_lock = threading.Lock()

    def _need_nli(self):
        if self.nli is None:
            raise RequestError("this server has no NLI model", 404)
        return self.nli

    def id2label(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in self._need_nli()._model.config.id2label.items()}

    def raw_probs(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Softmax in the model's own output order, pairs batched by ``NLIModel.probs``."""
        nli = self._need_nli()
        ordered = nli.probs(pairs)  # columns (contradiction, neutral, entailment)
        raw = np.zeros_like(ordered)
        raw[:, nli._order] = ordered
        return raw

    def text_probs(self, texts: list[str]) -> np.ndarray:
        """Softmax of each single text, in the model's output order."""
        nli = self._need_nli()
        out = []
        with self._nli_lock, torch.inference_mode():
            for text in texts:
                enc = nli._tokenizer(
                    text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
                )
                logits = nli._model(**enc.to(nli.device)).logits.float()
                out.append(torch.softmax(logits, -1)[0].cpu().numpy())
        return np.stack(out)

    # -- routes --------------------------------------------------------------------------------

    def info(self) -> dict:
        id2label = self.id2label()
        return {
            "model_id": self.nli_name,
            "model_dtype": "float32",
            "model_type": {
                "classifier": {
                    "id2label": {str(k): v for k, v in id2label.items()},
                    "label2id": {v: k for k, v in id2label.items()},
                }
            },
            "max_client_batch_size": 512,
        }

    def predict(self, body: dict) -> Any:
        inputs = body.get("inputs")
        single = (
            isinstance(inputs, list)
            and len(inputs) == 2
            and all(isinstance(t, str) for t in inputs)
        )
        batch = [inputs] if single else inputs
        if (
            not isinstance(batch, list)
            or not batch
            or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p)
                for p in batch
            )
        ):
            raise RequestError("inputs must be a [premise, hypothesis] pair or a list of them")
        names = self.id2label()
        probs = self.raw_probs([(p, h) for p, h in batch])
        rows = [
            sorted(
                ({"score": float(row[k]), "label": names[k]} for k in range(len(row))),
                key=lambda d: -d["score"],
            )
            for row in probs
        ]
        return rows[0] if single else rows

    def classify(self, body: dict) -> dict:
        texts = _texts(body.get("input"), "input")
        names = self.id2label()
        probs = self.text_probs(texts)
        data = [
            {
                "index": i,
                "label": names[int(row.argmax())],
                "probs": [float(x) for x in row],
                "num_classes": len(row),
            }
            for i, row in enumerate(probs)
        ]
        return self._envelope("classify", self.nli_name, data)

    def embeddings(self, body: dict) -> dict:
        if self.embedder is None:
            raise RequestError("this server has no embedding model", 404)
        texts = _texts(body.get("input"), "input")
        vecs = self.embedder.embed(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
            for i, v in enumerate(vecs)
        ]
        return self._envelope("embd", self.embedding_name, data)

    def models(self) -> dict:
        names = [n for n in (self.nli_name, self.embedding_name) if n]
        return {"object": "list", "data": [{"id": n, "object": "model"} for n in names]}

    @staticmethod
    def _envelope(prefix: str, model: str | None, data: list) -> dict:
        return {
            "id": f"{prefix}-{uuid.uuid4().hex}",
            "object": "list",
            "created": int(time.time()),
            "model": model,
            "data": data,
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }


def create_encoder_app(
    nli=None,
    embedder=None,
    *,
    api_key: str | None = None,
    nli_name: str | None = None,
    embedding_name: str | None = None,
) -> FastAPI:
    """A FastAPI app serving ``nli`` (a ``backends.nli.NLIModel``) and ``embedder`` (a
    ``backends.embeddings.SentenceEmbedder``); ``api_key`` requires ``Authorization: Bearer``."""
    server = EncoderServer(nli, embedder, nli_name=nli_name, embedding_name=embedding_name)
    app = FastAPI(title="Confidant encoder server", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return _error("Missing or wrong API key (Authorization: Bearer <key>)", 401)
        return await call_next(request)

    async def answer(request: Request | None, fn):
        from starlette.concurrency import run_in_threadpool

        try:
            body = {}
            if request is not None:
                try:
                    body = await request.json()
                except ValueError:
                    raise RequestError("The request body is not JSON") from None
                if not isinstance(body, dict):
                    raise RequestError("The request body must be a JSON object")
            return JSONResponse(await run_in_threadpool(fn, body))
        except RequestError as exc:
            return _error(str(exc), exc.status)

    @app.get("/info")
    async def info():
        return await answer(None, lambda _: server.info())

    @app.get("/v1/models")
    async def models():
        return await answer(None, lambda _: server.models())

    @app.post("/predict")
    async def predict(request: Request):
        return await answer(request, server.predict)

    @app.post("/classify")
    async def classify(request: Request):
        return await answer(request, server.classify)

    @app.post("/v1/classify")
    async def classify_v1(request: Request):
        return await answer(request, server.classify)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        return await answer(request, server.embeddings)

    return app
