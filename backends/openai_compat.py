"""Language models behind an OpenAI-compatible HTTP server (vLLM, llama.cpp server, Ollama,
OpenAI), filling the same records as the local backend from ``logprobs`` / ``top_logprobs``.

Servers return only the top-k log-probabilities, so a token's entropy and varentropy are
computed over those k alternatives only (−Σ_top-k p log p, a lower bound of the true entropy)
and every such record is flagged ``truncated``. The API key is read from an environment variable
and never stored; it and any credentials in the URL are redacted from every message
(:mod:`core.secrets`).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import httpx

from backends.base import Capabilities, Generation, SamplingParams, TokenRecord
from backends.openai_scoring import ECHO, UNDETECTED, OpenAIScoringMixin
from backends.requests_pool import (
    BACKOFF_S,
    CONCURRENCY_ENV,
    DEFAULT_CONCURRENCY,
    MAX_ATTEMPTS,
    RETRY_STATUSES,
    RequestPool,
    check_cancelled,
    check_concurrency,
    retry_wait,
)
from core.errors import BackendError, ConfidantError, PromptTooLongError
from core.secrets import redact, register, register_url, safe_url, url_auth

DEFAULT_KEY_ENV = "CONFIDANT_OPENAI_API_KEY"
REFUSED_STATUSES = frozenset({400, 404, 405, 422, 501})


def chat_messages(prompt: str) -> list[dict[str, str]]:
    """The /chat/completions messages for one user prompt."""
    return [{"role": "user", "content": prompt}]


def truncated_stats(top_logprobs: Sequence[float]) -> tuple[float, float]:
    """Entropy and varentropy over the top-k alternatives only (unnormalised partial sums)."""
    ps = [math.exp(lp) for lp in top_logprobs if math.isfinite(lp)]
    lps = [lp for lp in top_logprobs if math.isfinite(lp)]
    h = -sum(p * lp for p, lp in zip(ps, lps, strict=True))
    second = sum(p * lp * lp for p, lp in zip(ps, lps, strict=True))
    return h, max(0.0, second - h * h)


_CONTEXT_PATTERNS = (
    # OpenAI and vLLM: "This model's maximum context length is 4096 tokens. However, you
    # requested 5000 tokens (...)" / "... your messages resulted in 5000 tokens".
    re.compile(
        r"maximum context length is ([\d,]+) tokens.*?(?:requested|resulted in) ([\d,]+) tokens",
        re.S,
    ),
    # This project's server (backends.serve_openai): "The prompt is 5,000 tokens long; m takes
    # at most 4,096."
    re.compile(r"prompt is ([\d,]+) tokens long; .*? takes at most ([\d,]+)", re.S),
)


def context_length_error(status: int, text: str, model: str) -> PromptTooLongError | None:
    """A :class:`PromptTooLongError` when a server's error reply says the prompt is longer
    than the model's context window (OpenAI, vLLM and this project's server word it so)."""
    if status != 400:
        return None
    for k, pattern in enumerate(_CONTEXT_PATTERNS):
        found = pattern.search(text)
        if found:
            a, b = (int(g.replace(",", "")) for g in found.groups())
            limit, n_tokens = (a, b) if k == 0 else (b, a)
            return PromptTooLongError(n_tokens, limit, model)
    if "context_length_exceeded" in text:
        return PromptTooLongError(None, None, model)
    return None


class _DetectedCapabilities:
    """The class's declaration (read on the class), or, read on an instance, the same with
    ``exact_scoring`` and ``scoring`` as detected for its server (on first use)."""

    def __init__(self, declared: Capabilities) -> None:
        self.declared = declared

    def __get__(self, obj, owner=None) -> Capabilities:
        if obj is None:
            return self.declared
        mode = obj.scoring_mode()
        return replace(self.declared, exact_scoring=mode == ECHO, scoring=mode)


class OpenAICompatLM(OpenAIScoringMixin):
    """A model served over the OpenAI protocol at ``base_url`` (e.g. http://127.0.0.1:8000/v1)."""

    # Exact scoring needs a server that echoes prompt log-probabilities on token ids from its
    # /tokenize (vLLM): detected per server on first use (backends.openai_scoring); elsewhere
    # callers read distributions from sample_with_top, truncated to the top 20.
    capabilities = _DetectedCapabilities(
        Capabilities(
            exact_scoring=False,
            per_row_temperature=False,
            streams=False,
            truncated_logprobs=True,
            token_ids=False,
            concurrent_calls=True,
            scoring=UNDETECTED,
        )
    )

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = DEFAULT_KEY_ENV,
        top_logprobs: int = 5,
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
        self.max_attempts, self.backoff_s, self._sleep = max(1, int(max_attempts)), backoff_s, sleep
        # One pool of connections and one of threads per model, shared by every browser
        # session: at most ``concurrency`` requests are in flight at once.
        self._map = RequestPool(self.concurrency).map
        register_url(base_url)
        # Credentials written in the URL go as HTTP basic auth and nowhere else: the URL
        # the client holds (and httpx logs) has none.
        self.base_url = self.display_url = safe_url(base_url).rstrip("/")
        # vLLM serves /tokenize at the server root, beside /v1.
        self.root_url = re.sub(r"/v1$", "", self.base_url)
        self.model_id = model
        self.top_logprobs = top_logprobs
        key = os.environ.get(api_key_env) or os.environ.get("OPENAI_API_KEY")
        register(key)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            auth=url_auth(base_url),
            limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
        )

    def load(self) -> OpenAICompatLM:
        return self

    def _post(self, path: str, payload: dict, refusable: bool = False) -> dict | None:
        """The reply's JSON; with ``refusable``, None when the server refuses the request
        (HTTP 400, 404, 405, 422, 501: a route or field it does not support)."""
        try:
            return self._post_unredacted(path, payload, refusable)
        except BackendError as exc:
            # The key or the URL's password may be quoted by the server or by httpx, in any
            # escaping: redact the whole text before anything is cut or shown.
            raise BackendError(redact(str(exc))) from None

    def _post_unredacted(self, path: str, payload: dict, refusable: bool = False) -> dict | None:
        """POST with retries: a 429 or 5xx reply, a connection error or a time-out is tried
        again, up to ``max_attempts`` in all, after ``backoff_s · 2^k`` seconds plus jitter (or
        the reply's ``Retry-After``, at most a minute); then a clear error naming the server."""
        url = self.display_url
        for attempt in range(1, self.max_attempts + 1):
            check_cancelled()  # the user left or pressed stop: send nothing more
            last = attempt == self.max_attempts
            try:
                r = self._client.post(path, json=payload)
            except httpx.TimeoutException as exc:
                if not last:
                    self._sleep(retry_wait(attempt, None, self.backoff_s))
                    continue
                raise BackendError(
                    f"The server at {url} did not answer in time ({exc.__class__.__name__}, "
                    f"{attempt} attempt(s)). Fix: check it is running and not overloaded, or "
                    "raise the time-out."
                ) from exc
            except httpx.HTTPError as exc:
                if not last and isinstance(exc, httpx.TransportError):
                    self._sleep(retry_wait(attempt, None, self.backoff_s))
                    continue
                raise BackendError(
                    f"Could not reach the server at {url}: {exc} ({attempt} attempt(s)). Fix: "
                    "check the URL (it usually ends in /v1) and that the server is running."
                ) from exc
            if r.status_code in RETRY_STATUSES and not last:
                self._sleep(retry_wait(attempt, r.headers.get("retry-after"), self.backoff_s))
                continue
            if refusable and r.status_code in REFUSED_STATUSES:
                return None
            return self._reply(r, path, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _reply(self, r: httpx.Response, path: str, attempt: int) -> dict:
        url = self.display_url
        if r.status_code != 200:
            too_long = context_length_error(r.status_code, r.text, self.model_id)
            if too_long is not None:
                raise too_long
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            raise BackendError(
                f"The server at {url} answered HTTP {r.status_code} for {path}{tries}: "
                f"{redact(r.text)[:300]}"
            )
        try:
            return r.json()
        except ValueError as exc:
            raise BackendError(f"The server at {url} sent a reply that is not JSON") from exc

    def format_prompt(self, prompt: str, *, chat: bool = True) -> str:
        """What is sent: with ``chat`` the /chat/completions messages as JSON (the server
        applies its own chat template to them, which we cannot see); else the raw prompt."""
        if not chat:
            return prompt
        return json.dumps(chat_messages(prompt), ensure_ascii=False, indent=2)

    # -- sampling ----------------------------------------------------------------------------

    def sample(self, prompt: str, params: SamplingParams, *, chat: bool = True) -> list[Generation]:
        return self._sample(prompt, params, chat, self.top_logprobs, keep=5)

    def sample_with_top(
        self, prompt: str, params: SamplingParams, top_logprobs: int = 20, *, chat: bool = True
    ) -> list[Generation]:
        """Like :meth:`sample`, asking for ``top_logprobs`` alternatives at every position and
        keeping all of them in ``TokenRecord.top`` (token, probability), so the distribution at
        a given position (a judge's score token) can be read back. Servers cap k at 20."""
        if isinstance(top_logprobs, bool) or not 1 <= int(top_logprobs) <= 20:
            raise ConfidantError(f"top_logprobs must be between 1 and 20, got {top_logprobs!r}")
        k = int(top_logprobs)
        return self._sample(prompt, params, chat, k, keep=k)

    def _sample(
        self, prompt: str, params: SamplingParams, chat: bool, top_logprobs: int, keep: int
    ) -> list[Generation]:
        params.validate()
        payload = {
            "model": self.model_id,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "logprobs": True,
            "top_logprobs": top_logprobs,
        }
        if params.top_k:
            payload["top_k"] = params.top_k  # vLLM and llama.cpp accept it; OpenAI ignores it
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.stop:
            payload["stop"] = list(params.stop)
        if chat:
            payload["messages"] = chat_messages(prompt)
            data = self._post("/chat/completions", payload)
        else:
            payload["prompt"] = prompt
            payload["logprobs"] = top_logprobs
            payload.pop("top_logprobs")
            data = self._post("/completions", payload)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise BackendError("The server's reply has no choices")
        choices = sorted(choices, key=lambda c: c.get("index", 0))
        return [self._generation(c, chat, keep) for c in choices]

    def sample_batch(
        self, prompts: Sequence[str], params: SamplingParams, *, chat: bool = True
    ) -> list[list[Generation]]:
        """Every prompt's samples, the requests sent concurrently (``concurrency`` at once)."""
        return self._map(lambda p: self.sample(p, params, chat=chat), prompts)

    def greedy(
        self, prompt: str, max_new_tokens: int = 64, *, stop: Sequence[str] = (), chat: bool = True
    ) -> Generation:
        params = SamplingParams(
            n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0, stop=list(stop)
        )
        return self.sample(prompt, params, chat=chat)[0]

    def _generation(self, choice: dict, chat: bool, keep: int = 5) -> Generation:
        tokens: list[TokenRecord] = []
        if chat:
            text = (choice.get("message") or {}).get("content") or ""
            for item in (choice.get("logprobs") or {}).get("content") or []:
                alts = [
                    (a.get("token", ""), float(a.get("logprob", -math.inf)))
                    for a in item.get("top_logprobs") or []
                ]
                tokens.append(self._record(item.get("token", ""), item.get("logprob"), alts, keep))
        else:
            text = choice.get("text") or ""
            lp = choice.get("logprobs") or {}
            for i, tok in enumerate(lp.get("tokens") or []):
                tops = (lp.get("top_logprobs") or [None] * (i + 1))[i] or {}
                alts = sorted(((t, float(v)) for t, v in tops.items()), key=lambda x: -x[1])
                tokens.append(self._record(tok, (lp.get("token_logprobs") or [])[i], alts, keep))
        finish = "stop" if choice.get("finish_reason") == "stop" else "length"
        return Generation(text=text, tokens=tokens, finish_reason=finish, logprob_source="server")

    @staticmethod
    def _record(token: str, logprob, alts: list[tuple[str, float]], keep: int = 5) -> TokenRecord:
        if logprob is None or not isinstance(logprob, int | float) or math.isnan(logprob):
            raise BackendError(f"The server sent no usable log-probability for token {token!r}")
        h, v = truncated_stats([a[1] for a in alts] or [float(logprob)])
        return TokenRecord(
            text=token,
            logprob=float(max(logprob, -1e4)),
            entropy=h,
            varentropy=v,
            top=[(t, math.exp(lp)) for t, lp in alts[:keep]],
            sampling_logprob=None,
            truncated=True,
        )
