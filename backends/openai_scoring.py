"""Teacher-forced scoring through an OpenAI-compatible server: ``score``, ``score_tree`` and
``choice_probs`` of :class:`backends.openai_compat.OpenAICompatLM`.

A server that echoes prompt log-probabilities (``/completions`` with ``echo``, ``max_tokens=0``
and ``logprobs``, as vLLM does) gives log p(token | everything before it) for every token of
the prompt, so log p(continuation | prompt) = Σ_j log p(c_j | prompt, c_<j) is exact when the
prompt is sent as token ids. The ids come from the server's own ``/tokenize`` (vLLM's route at
the server root, chat template applied for a chat prompt), split exactly as the local backend
splits them: prefix, then suffix, then continuation (the continuation's ids are those of
``suffix + continuation`` after the suffix's). How a server scores is detected once per server
and model, on first use, and cached for the process (thread-safe):

- ``server_echo``: ``/tokenize`` and echo both work: exact, chat template included;
- ``server_echo_text``: echo works on text only: the prompt's raw text is scored (no chat
  template), the continuation's tokens found by ``text_offset``; not exact for chat prompts;
- ``server_top_logprobs``: echo is refused: callers read distributions from the top-20
  log-probabilities of sampled text instead, and mark them truncated.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

from backends.base import ContinuationScore
from core.errors import BackendError, ConfidantError

ECHO = "server_echo"
ECHO_TEXT = "server_echo_text"
TOP_LOGPROBS = "server_top_logprobs"
UNDETECTED = "server_detect"  # the class's declaration: decided per server on first use

_PROBE = "The sky is blue and the grass is green."
_MODES: dict[tuple[str, str], tuple[str, int]] = {}  # (url, model) → (mode, echo max_tokens)
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_GUARD = threading.Lock()
_CACHE_LIMIT = 20_000


def forget_scoring_modes() -> None:
    """Forget every detected scoring mode (a server restarted with other settings; tests)."""
    with _GUARD:
        _MODES.clear()


class OpenAIScoringMixin:
    """The scoring methods. The host provides ``base_url``, ``model_id``, ``_map`` (the
    concurrent pool) and ``_post(path, payload, refusable=False)``, which returns None for a
    request the server refuses (HTTP 400, 404, 405, 422, 501) when ``refusable``."""

    # -- detection -----------------------------------------------------------------------------

    def scoring_mode(self) -> str:
        """How this server scores (see the module docstring), detected on the first call."""
        return self._scoring()[0]

    def _scoring(self) -> tuple[str, int]:
        key = (self.base_url, self.model_id)
        with _GUARD:
            lock = _LOCKS.setdefault(key, threading.Lock())
        with lock:
            if key not in _MODES:
                found = self._detect_scoring()
                with _GUARD:
                    _MODES[key] = found
            return _MODES[key]

    def _detect_scoring(self) -> tuple[str, int]:
        ids = self._tokenize(_PROBE, chat=False, refusable=True)
        if ids is not None and len(ids) >= 2:
            for max_tokens in (0, 1):  # 1 where 0 is refused; the new token is ignored
                got = self._echo_ids(ids, max_tokens, refusable=True)
                if got is not None:
                    return ECHO, max_tokens
        for max_tokens in (0, 1):
            payload = self._text_payload(_PROBE, max_tokens)
            data = self._post("/completions", payload, refusable=True)
            if data is not None and _echoed(data, len(_PROBE)) is not None:
                return ECHO_TEXT, max_tokens
        return TOP_LOGPROBS, 0

    # -- requests ------------------------------------------------------------------------------

    def _tokenize(self, text: str, *, chat: bool, refusable: bool = False) -> list[int] | None:
        """Token ids from the server's ``/tokenize``: with ``chat`` the chat template applied
        to one user message (its special tokens included), else the text with the tokenizer's
        special tokens; cached."""
        key = (text, chat)
        cache = self.__dict__.setdefault("_token_cache", {})
        if key in cache:
            return list(cache[key])
        payload = {"model": self.model_id}
        if chat:
            payload |= {
                "messages": [{"role": "user", "content": text}],
                "add_generation_prompt": True,
                "add_special_tokens": False,
            }
        else:
            payload |= {"prompt": text, "add_special_tokens": True}
        data = self._post(self.root_url + "/tokenize", payload, refusable=refusable)
        if data is None:
            return None
        ids = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not all(isinstance(t, int) for t in ids):
            if refusable:
                return None
            raise BackendError(f"The server at {self.display_url} sent no token ids")
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        cache[key] = tuple(ids)
        return ids

    def _encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens (as the local backend's ``_encode``)."""
        key = (text, None)
        cache = self.__dict__.setdefault("_token_cache", {})
        if key not in cache:
            data = self._post(
                self.root_url + "/tokenize",
                {"model": self.model_id, "prompt": text, "add_special_tokens": False},
            )
            cache[key] = tuple(data.get("tokens") or [])
        return list(cache[key])

    def _echo_ids(
        self, ids: list[int], max_tokens: int, *, refusable: bool = False
    ) -> tuple[list[str], list[float]] | None:
        """(token texts, log p of ids[1:]) from one echo request on the token ids."""
        payload = {
            "model": self.model_id,
            "prompt": list(ids),
            "echo": True,
            "max_tokens": max_tokens,
            "logprobs": 1,
            "temperature": 0,
        }
        data = self._post("/completions", payload, refusable=refusable)
        if data is None:
            return None
        try:
            lp = data["choices"][0]["logprobs"]
            toks, lps = list(lp["tokens"])[: len(ids)], list(lp["token_logprobs"])[: len(ids)]
            values = [float(x) for x in lps[1:]]
            ok = len(lps) == len(ids) and all(math.isfinite(x) for x in values)
        except (KeyError, IndexError, TypeError, ValueError):
            ok = False
        if not ok:
            if refusable:
                return None
            raise BackendError(
                f"The server at {self.display_url} did not echo the prompt's log-probabilities"
            )
        return toks[1:], values

    def _text_payload(self, text: str, max_tokens: int) -> dict:
        return {
            "model": self.model_id,
            "prompt": text,
            "echo": True,
            "max_tokens": max_tokens,
            "logprobs": 1,
            "temperature": 0,
        }

    # -- scoring -------------------------------------------------------------------------------

    def score(
        self, prompt: str, continuations: Sequence[str], *, chat: bool = True
    ) -> list[ContinuationScore]:
        """Teacher-forced log-likelihoods of each continuation after ``prompt``, exact where
        the server echoes token ids (``scoring_mode() == "server_echo"``, chat template applied
        when ``chat``); else the raw text is echoed and ``chat`` ignored."""
        return self.score_tree(prompt, [""], continuations, chat=chat)[0]

    def score_tree(
        self,
        prefix: str,
        suffixes: Sequence[str],
        continuations: Sequence[str],
        *,
        chat: bool = True,
    ) -> list[list[ContinuationScore]]:
        """log p(continuation | prefix + suffix) for every (suffix, continuation), one request
        per row, sent concurrently. Returns ``[suffix index][continuation index]``."""
        if not suffixes or not continuations:
            return [[] for _ in suffixes]
        mode, max_tokens = self._scoring()
        pairs = [(s, c) for s in suffixes for c in continuations]
        if mode == ECHO:
            flat = self._score_ids(prefix, pairs, chat, max_tokens)
        else:
            flat = self._map(lambda sc: self._score_text(prefix + sc[0], sc[1], max_tokens), pairs)
        k = len(continuations)
        return [flat[i * k : (i + 1) * k] for i in range(len(suffixes))]

    def _score_ids(self, prefix, pairs, chat, max_tokens) -> list[ContinuationScore]:
        prefix_ids = self._tokenize(prefix, chat=chat)
        if not prefix_ids:
            raise ConfidantError("the prompt to score encodes to no tokens")
        texts = list(dict.fromkeys(t for s, c in pairs for t in (s, s + c, c) if t))
        encoded = dict(zip(texts, self._map(self._encode, texts), strict=True))
        rows = []
        for s, c in pairs:
            s_ids = encoded[s] if s else []
            both = encoded.get(s + c, [])
            c_ids = both[len(s_ids) :] if both[: len(s_ids)] == s_ids else []
            c_ids = c_ids or encoded.get(c, [])
            if not c_ids:
                raise ConfidantError(f"continuation {c!r} encodes to no tokens")
            rows.append((c, prefix_ids + s_ids + c_ids, len(c_ids)))

        def one(row) -> ContinuationScore:
            text, ids, n = row
            toks, lps = self._echo_ids(ids, max_tokens)
            return ContinuationScore(text=text, token_logprobs=lps[-n:], tokens=toks[-n:])

        return self._map(one, rows)

    def _score_text(self, prompt: str, c: str, max_tokens: int) -> ContinuationScore:
        data = self._post("/completions", self._text_payload(prompt + c, max_tokens))
        found = _echoed(data, len(prompt) + len(c), start=len(prompt))
        if found is None:
            raise BackendError(
                "The server does not return prompt log-probabilities (echo); scoring needs them"
            )
        toks, lps = found
        return ContinuationScore(text=c, token_logprobs=lps, tokens=toks)

    def choice_probs(
        self, prompt: str, options: Sequence[str], *, chat: bool = True
    ) -> list[float]:
        """p(option | prompt) over the options: softmax of their total log-likelihoods."""
        scores = [s.total_logprob for s in self.score(prompt, options, chat=chat)]
        if not scores:
            return []
        m = max(scores)
        w = [math.exp(s - m) for s in scores]
        return [x / sum(w) for x in w]


def _echoed(data: dict, end: int, start: int = 0) -> tuple[list[str], list[float]] | None:
    """(tokens, log-probabilities) of the echoed text's tokens starting at character ``start``
    and before ``end`` (generated tokens excluded), read by ``text_offset``; None when the
    reply has no echoed log-probabilities."""
    try:
        lp = data["choices"][0]["logprobs"]
        offsets, toks, lps = lp["text_offset"], lp["tokens"], lp["token_logprobs"]
        keep = [i for i, off in enumerate(offsets) if start <= off < end]
        if not keep or (start == 0 and len(keep) < 2):
            return None
        keep = [i for i in keep if lps[i] is not None]
        return [toks[i] for i in keep], [float(lps[i]) for i in keep]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
