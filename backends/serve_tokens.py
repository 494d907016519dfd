"""Token ids on our OpenAI-protocol server (``backends.serve_openai``): the ``/tokenize``
route in vLLM's layout, and prompts sent as token ids.

``POST /tokenize`` takes ``prompt`` (with ``add_special_tokens``, default true) or ``messages``
(the chat template applied, ``add_generation_prompt`` default true) and answers ``tokens`` (the
ids), ``count`` and ``max_model_len``. The ids are exactly the local backend's: a prompt with
special tokens is ``HFCausalLM._prompt_ids(prompt, chat=False)``, one user message is
``_prompt_ids(content, chat=True)``, text without special tokens ``_encode(text)``.
"""

from __future__ import annotations

from typing import Any

from backends.base import SamplingParams
from backends.serve_params import RequestError, int_field

MAX_TOP_LOGPROBS = 20


def tokenize(server, body: dict) -> dict:
    """The ``/tokenize`` answer for ``body`` (``server``: a ``serve_openai.OpenAIServer``)."""
    server.check_model(body)
    lm = server.lm
    special = body.get("add_special_tokens")
    if "messages" in body:
        if body.get("add_generation_prompt", True) is not True:
            raise RequestError("only add_generation_prompt: true is supported")
        prompt, chat = server.chat_prompt(body["messages"])
        if chat:
            ids = lm._prompt_ids(prompt, True)
        else:  # a rendered conversation: its template text holds the special tokens
            ids = lm._encode(prompt)
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise RequestError("prompt must be a string (or send messages)")
        ids = lm._prompt_ids(prompt, False) if special in (None, True) else lm._encode(prompt)
    limit = getattr(lm.model.config, "max_position_embeddings", None)
    return {"count": len(ids), "max_model_len": limit, "tokens": list(ids), "token_strs": None}


def id_completions(server, body: dict, prompts: list[list[int]]) -> dict:
    """``/completions`` on prompts sent as token ids: scored only (echo, max_tokens 0)."""
    if not body.get("echo") or body.get("max_tokens", 16) != 0:
        raise RequestError("a prompt of token ids is only scored: echo true, max_tokens 0")
    k = int_field(body, "logprobs", None, 0, MAX_TOP_LOGPROBS)
    vocab = server.lm.model.config.vocab_size
    if any(t >= vocab for p in prompts for t in p):
        raise RequestError(f"token ids must be below the vocabulary size {vocab}")
    with server.lock:
        echoed = [server.ids_logprobs(p, k or 0) for p in prompts]
    choices = [
        {
            "index": i,
            "text": "".join(e["tokens"]),
            "logprobs": e if k is not None else None,
            "finish_reason": "length",
        }
        for i, e in enumerate(echoed)
    ]
    n_prompt = sum(len(p) for p in prompts)
    return server._response("text_completion", SamplingParams(), choices, n_prompt, 0)


def id_prompts(prompts: Any) -> list[list[int]] | None:
    """``prompts`` as lists of token ids when they are ids (one list of ints, or a list of
    such lists); None when they are not ids."""
    if isinstance(prompts, list) and prompts and all(_is_id(t) for t in prompts):
        return [list(prompts)]
    if (
        isinstance(prompts, list)
        and prompts
        and all(isinstance(p, list) and p and all(_is_id(t) for t in p) for p in prompts)
    ):
        return [list(p) for p in prompts]
    return None


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
