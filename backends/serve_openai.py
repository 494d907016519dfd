"""Serve a local transformers model over the OpenAI protocol, log-probabilities included.

    python -m cli serve --model Qwen/Qwen2.5-0.5B-Instruct --port 8000
    python app.py --openai-base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-0.5B-Instruct

One machine with the model serves a team: every Confidant (or any OpenAI client) pointed at it
gets answers whose log-probabilities are exactly those of the local backend (``HFCausalLM``):
the raw model distribution, temperature 1, no truncation.

Routes: ``GET /v1/models``; ``POST /v1/chat/completions`` (``messages``, ``n``, ``temperature``,
``top_p``, ``top_k``, ``max_tokens``, ``seed``, ``stop``, ``logprobs``, ``top_logprobs`` ≤ 20);
``POST /v1/completions`` (``prompt`` as a string or a list, the same sampling fields,
``logprobs`` ≤ 20, and ``echo``: with ``max_tokens=0`` the prompt's own token log-probabilities,
the first token's being null, as vLLM and llama.cpp answer; a prompt of token ids is scored
so); ``POST /tokenize`` (:mod:`backends.serve_tokens`). A temperature of 0 is greedy.
``--api-key`` (or ``CONFIDANT_SERVE_API_KEY``) requires ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from backends.base import Generation, SamplingParams
from backends.serve_params import RequestError, int_field, sampling_params
from backends.serve_tokens import MAX_TOP_LOGPROBS, id_completions, id_prompts, tokenize
from core.errors import ConfidantError

FLOOR = -9999.0  # what OpenAI reports for a probability that underflows to zero


def _error(message: str, status: int) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def _lp(value: float) -> float:
    return max(float(value), FLOOR) if not math.isnan(value) else FLOOR


class OpenAIServer:
    """The model work behind the routes, one request at a time (a model runs one batch)."""

    def __init__(self, lm, model_name: str | None = None, *, echo: bool = True) -> None:
        self.lm = lm.load()
        self.echo = echo
        self.model_name = model_name or lm.model_id
        self.lock = threading.Lock()

    # -- prompts -------------------------------------------------------------------------------

    def chat_prompt(self, messages: Any) -> tuple[str, bool]:
        """(prompt, chat): one user message goes through the backend's own chat path, exactly
        as the local app sends it; a conversation is rendered with the chat template."""
        if not isinstance(messages, list) or not messages:
            raise RequestError("messages must be a non-empty list")
        turns = []
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                raise RequestError("each message needs a role: system, user or assistant")
            content = m.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(
                    p.get("text", "") for p in content if isinstance(p, dict) and "text" in p
                )
            if not isinstance(content, str):
                raise RequestError("each message needs text content")
            turns.append({"role": m["role"], "content": content})
        if len(turns) == 1 and turns[0]["role"] == "user":
            return turns[0]["content"], True
        tok = self.lm.tokenizer
        if not getattr(tok, "chat_template", None):
            raise RequestError("this model has no chat template: use /v1/completions")
        text = tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        # The raw-prompt path adds the tokenizer's own BOS; the template already has it.
        bos = tok.bos_token
        if bos and text.startswith(bos) and tok("", add_special_tokens=True).input_ids:
            text = text[len(bos) :]
        return text, False

    # -- log-probabilities ---------------------------------------------------------------------

    def _logprobs(self, ids: list[int]) -> torch.Tensor:
        """log p(· | ids[:i+1]) for every position i: one teacher-forced forward pass."""
        model = self.lm.model
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids], device=model.device))
            return torch.log_softmax(out.logits[0].float(), -1).cpu()

    def _token_text(self, token_id: int) -> str:
        return self.lm.tokenizer.decode([int(token_id)], clean_up_tokenization_spaces=False)

    def alternatives(self, prompt: str, chat: bool, gen: Generation, k: int) -> list[list]:
        """The top-``k`` (token, logprob) of the raw distribution at each generated token.

        The backend records the top 5 while generating; for more, the answer is scored once
        more, teacher-forced, after the prompt."""
        if k <= 5:
            return [
                [(t, _lp(math.log(p)) if p > 0 else FLOOR) for t, p in rec.top[:k]]
                for rec in gen.tokens
            ]
        prompt_ids = self.lm._prompt_ids(prompt, chat)
        gen_ids = [int(rec.token_id) for rec in gen.tokens]
        if not gen_ids:
            return []
        logp = self._logprobs(prompt_ids + gen_ids[:-1])
        top = logp[len(prompt_ids) - 1 :].topk(k, dim=-1)
        return [
            [
                (self._token_text(i), _lp(v))
                for v, i in zip(vals.tolist(), idx.tolist(), strict=True)
            ]
            for vals, idx in zip(top.values, top.indices, strict=True)
        ]

    def prompt_logprobs(self, prompt: str, k: int) -> dict:
        """The prompt's tokens, their log-probabilities (the first null) and offsets."""
        enc = self.lm.tokenizer(prompt, add_special_tokens=True, return_offsets_mapping=True)
        ids, offsets = enc.input_ids, enc.offset_mapping
        tokens = [
            prompt[a:b] if b > a else self._token_text(t)
            for t, (a, b) in zip(ids, offsets, strict=True)
        ]
        return self.ids_logprobs(ids, k, tokens, [a for a, _ in offsets])

    def ids_logprobs(self, ids: list[int], k: int, tokens=None, offsets=None) -> dict:
        """Every token's log-probability given those before it (the first null), its top
        ``k`` alternatives, its text and offset (decoded one by one unless given)."""
        if tokens is None:
            tokens = [self._token_text(t) for t in ids]
            offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
        if not ids:
            return {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        logp = self._logprobs(ids)
        token_lps: list[float | None] = [None]
        tops: list[dict | None] = [None]
        for i in range(1, len(ids)):
            dist = logp[i - 1]
            token_lps.append(_lp(dist[ids[i]].item()))
            if k:
                vals, idx = dist.topk(k)
                pairs = zip(vals.tolist(), idx.tolist(), strict=True)
                tops.append({self._token_text(t): _lp(v) for v, t in pairs})
            else:
                tops.append(None)
        return {
            "tokens": tokens,
            "token_logprobs": token_lps,
            "top_logprobs": tops if k else None,
            "text_offset": list(offsets),
        }

    # -- routes --------------------------------------------------------------------------------

    def models(self) -> dict:
        return {
            "object": "list",
            "data": [{"id": self.model_name, "object": "model", "owned_by": "confidant"}],
        }

    def check_model(self, body: dict) -> None:
        name = body.get("model")
        if name not in (None, "", self.model_name, self.lm.model_id):
            raise RequestError(
                f"The model {name!r} does not exist; this server has {self.model_name!r}", 404
            )

    def chat_completions(self, body: dict) -> dict:
        self.check_model(body)
        prompt, chat = self.chat_prompt(body.get("messages"))
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        params = sampling_params(
            body, int_field({"max_tokens": max_tokens}, "max_tokens", 256, 1, 4096)
        )
        want = bool(body.get("logprobs"))
        k = int_field(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS) if want else 0
        with self.lock:
            answers = self.lm.sample(prompt, params, chat=chat)
            alts = [self.alternatives(prompt, chat, g, k) for g in answers] if want else None
            n_prompt = len(self.lm._prompt_ids(prompt, chat))
        choices = []
        for j, g in enumerate(answers):
            logprobs = None
            if want:
                logprobs = {
                    "content": [
                        {
                            "token": rec.text,
                            "logprob": _lp(rec.logprob),
                            "bytes": list(rec.text.encode("utf-8")),
                            "top_logprobs": [
                                {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))}
                                for t, lp in alts[j][i]
                            ],
                        }
                        for i, rec in enumerate(g.tokens)
                    ]
                }
            choices.append(
                {
                    "index": j,
                    "message": {"role": "assistant", "content": g.text},
                    "logprobs": logprobs,
                    "finish_reason": g.finish_reason,
                }
            )
        completion = sum(len(g.tokens) for g in answers)
        return self._response("chat.completion", params, choices, n_prompt, completion)

    def completions(self, body: dict) -> dict:
        self.check_model(body)
        prompts = body.get("prompt")
        if body.get("echo") and not self.echo:
            raise RequestError("echo is not supported by this server")
        ids = id_prompts(prompts)
        if ids is not None:
            return id_completions(self, body, ids)
        if isinstance(prompts, str):
            prompts = [prompts]
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str) for p in prompts)
        ):
            raise RequestError("prompt must be a string or a non-empty list of strings")
        echo = bool(body.get("echo"))
        max_tokens = int_field(body, "max_tokens", 16, 0, 4096)
        k = int_field(body, "logprobs", None, 0, MAX_TOP_LOGPROBS)
        if max_tokens == 0 and not echo:
            raise RequestError("max_tokens must be at least 1 (0 only with echo)")
        params = sampling_params(body, max(1, max_tokens))
        choices = []
        with self.lock:
            answers = (
                self.lm.sample_batch(prompts, params, chat=False)
                if max_tokens
                else [[Generation(text="", tokens=[], finish_reason="length")] for _ in prompts]
            )
            echoed = [self.prompt_logprobs(p, k or 0) for p in prompts] if echo else None
            alts = (
                [
                    [self.alternatives(p, False, g, k) for g in gens]
                    for p, gens in zip(prompts, answers, strict=True)
                ]
                if k
                else None
            )
        n_prompt = completion = 0
        for p_i, (prompt, gens) in enumerate(zip(prompts, answers, strict=True)):
            n_prompt += (
                len(echoed[p_i]["tokens"]) if echo else len(self.lm._prompt_ids(prompt, False))
            )
            for j, g in enumerate(gens):
                completion += len(g.tokens)
                text = (prompt if echo else "") + g.text
                logprobs = None
                if k is not None:
                    start = len(prompt) if echo else 0
                    offsets, pos = [], start
                    for rec in g.tokens:
                        offsets.append(pos)
                        pos += len(rec.text)
                    logprobs = {
                        "tokens": [rec.text for rec in g.tokens],
                        "token_logprobs": [_lp(rec.logprob) for rec in g.tokens],
                        "top_logprobs": [dict(a) for a in alts[p_i][j]] if alts else None,
                        "text_offset": offsets,
                    }
                    if echo:
                        e = echoed[p_i]
                        logprobs = {
                            "tokens": e["tokens"] + logprobs["tokens"],
                            "token_logprobs": e["token_logprobs"] + logprobs["token_logprobs"],
                            "top_logprobs": (e["top_logprobs"] or [None] * len(e["tokens"]))
                            + (logprobs["top_logprobs"] or [None] * len(g.tokens))
                            if k
                            else None,
                            "text_offset": e["text_offset"] + logprobs["text_offset"],
                        }
                choices.append(
                    {
                        "index": p_i * params.n + j,
                        "text": text,
                        "logprobs": logprobs,
                        "finish_reason": g.finish_reason,
                    }
                )
        return self._response("text_completion", params, choices, n_prompt, completion)

    def _response(
        self, kind: str, params: SamplingParams, choices: list, n_prompt: int, completion: int
    ) -> dict:
        """The response envelope the OpenAI protocol wraps around ``choices``."""
        prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
        return {
            "id": f"{prefix}-{uuid.uuid4().hex}",
            "object": kind,
            "created": int(time.time()),
            "model": self.model_name,
            "system_fingerprint": f"seed-{params.seed}",
            "choices": choices,
            "usage": {
                "prompt_tokens": n_prompt,
                "completion_tokens": completion,
                "total_tokens": n_prompt + completion,
            },
        }


def create_app(
    lm,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    latency_s: float = 0.0,
    echo: bool = True,
) -> FastAPI:
    """A FastAPI app serving ``lm`` (an ``HFCausalLM``) under ``/v1``, and ``/tokenize`` at
    the root as vLLM does. ``latency_s`` delays every answer without blocking the others (what
    a GPU server's queue and the network add; for benchmarks of the client); ``echo=False``
    refuses ``echo`` as servers without prompt log-probabilities do."""
    server = OpenAIServer(lm, model_name, echo=echo)
    app = FastAPI(title="Confidant OpenAI-compatible server", docs_url=None, redoc_url=None)
    app.state.server = server

    if latency_s > 0:

        @app.middleware("http")
        async def delay(request: Request, call_next):
            import asyncio

            await asyncio.sleep(latency_s)
            return await call_next(request)

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return _error("Missing or wrong API key (Authorization: Bearer <key>)", 401)
        return await call_next(request)

    async def body_of(request: Request) -> dict:
        try:
            body = await request.json()
        except ValueError:
            raise RequestError("The request body is not JSON") from None
        if not isinstance(body, dict):
            raise RequestError("The request body must be a JSON object")
        return body

    def answer(fn, body: dict) -> JSONResponse:
        try:
            return JSONResponse(fn(body))
        except RequestError as exc:
            return _error(str(exc), exc.status)
        except ConfidantError as exc:
            return _error(str(exc), 400)

    @app.get("/v1/models")
    def models():
        return server.models()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = await body_of(request)
        except RequestError as exc:
            return _error(str(exc), exc.status)
        return await _in_thread(answer, server.chat_completions, body)

    @app.post("/v1/completions")
    async def completions(request: Request):
        try:
            body = await body_of(request)
        except RequestError as exc:
            return _error(str(exc), exc.status)
        return await _in_thread(answer, server.completions, body)

    @app.post("/tokenize")
    async def tokenize_route(request: Request):
        try:
            body = await body_of(request)
        except RequestError as exc:
            return _error(str(exc), exc.status)
        return await _in_thread(answer, lambda b: tokenize(server, b), body)

    return app


async def _in_thread(fn, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
