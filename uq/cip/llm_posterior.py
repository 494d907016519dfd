"""The language model's side of C-IP 20 Questions: posterior, answerer and open queries.

Source: Chan, Ge, Dobriban, Hassani & Vidal, "Conformal Information Pursuit for Interactively
Guiding Large Language Models" (NeurIPS 2025), §5.1 and Appendix (prompts).

- :class:`LLMPosterior` is the ``posterior_batch(histories)`` callable of ``uq/cip/conformal.py``:
  p̂(y | h) = exp(log p(" " + name_y | prompt(h))) / Σ_k exp(log p(" " + name_k | prompt(h))),
  where prompt(h) is the chat prompt of :func:`uq.cip.class_sets.posterior_prompt` (the class
  list as system message, the history as numbered user lines) followed by the forced assistant
  prefix "The animal is:", and log p of a name sums over EVERY token of the name (exact for
  names of several tokens, unlike the reference code's first-token logits). Histories that
  extend the same history share its prompt text; they are scored with the backend's
  ``score_tree(prefix, suffixes, continuations)``: the shared prefix (system + the common
  history lines) is run once, each (question, answer, forced prefix) suffix is a row, and the
  K class names are the continuations.
- :class:`LLMAnswerer` role-plays a hidden class and answers yes/no with
  ``choice_probs(prompt, [" Yes", " No"])``.
- :func:`propose_questions` asks the model for open queries as JSON, parsed with retries.
- :func:`make_posterior` picks the model posterior or the bank oracle (clearly labelled: the
  oracle is not a language model).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from backends.base import SamplingParams, capabilities_of
from core.errors import ConfidantError
from uq.cip.class_sets import (
    MAX_QUESTION_CHARS,
    ORACLE_POSTERIOR_LABEL,
    ClassSet,
    History,
    oracle_posterior_batch,
    posterior_prompt,
    render_answer,
)

POSTERIOR_KINDS = ("llm", "oracle")
ANSWERER_KINDS = ("bank", "llm")
ORACLE_MODEL_KEY = "oracle:bank"
HISTORY_HEADER = "Here is the information you have gathered.\n"


# --------------------------------------------------------------------------------------------
# Prompt text
# --------------------------------------------------------------------------------------------


def chat_text(lm: Any, system: str, user: str, assistant_prefix: str = "") -> str:
    """The full prompt text: ``system`` and ``user`` through the model's chat template (with
    the assistant header), then ``assistant_prefix`` at the start of the assistant's turn.

    Models without a chat template (or backends without a tokenizer, such as an
    OpenAI-compatible server scored through its completions endpoint) get plain
    ``system + "\\n\\n" + user + "\\n\\n" + assistant_prefix``. A template that rejects a
    system role gets the system text folded into the user turn. A beginning-of-sequence token
    written by the template is dropped when the tokenizer adds it again on encoding.
    """
    tok = lm.tokenizer if capabilities_of(lm).token_ids else None
    template = getattr(tok, "chat_template", None) if tok is not None else None
    if not template:
        return f"{system}\n\n{user}\n\n{assistant_prefix}"
    try:
        text = tok.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": user}],
            tokenize=False,
            add_generation_prompt=True,
        )
    except Exception:  # noqa: BLE001 - templates that refuse a system message
        text = tok.apply_chat_template(
            [{"role": "user", "content": f"{system}\n\n{user}"}],
            tokenize=False,
            add_generation_prompt=True,
        )
    bos = getattr(tok, "bos_token", None)
    if bos and text.startswith(bos):
        added = tok("a", add_special_tokens=True).input_ids[:1]
        if added == [tok.bos_token_id]:
            text = text[len(bos) :]
    return text + assistant_prefix


def _history_lines(history: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{k}. {q} {render_answer(a)}" for k, (q, a) in enumerate(history, start=1)]


# --------------------------------------------------------------------------------------------
# The posterior
# --------------------------------------------------------------------------------------------


class LLMPosterior:
    """p̂(class | history) from a language model (see the module docstring for the formula).

    ``posterior_batch(histories)`` (also the instance's ``__call__``) returns an
    (len(histories), K) array of probabilities. Histories are grouped so that every group
    shares one prompt prefix, run once per group through ``lm.score_tree``:

    - histories extending the same history by one line (the (candidate, hypothesis) histories
      of one selection step) share the prefix system + that history;
    - the remaining non-empty histories (e.g. random calibration histories) share the system
      message and the history header, with all their lines in the row;
    - the empty history is scored on its own.

    The split is made right after a newline. When the model's tokenizer would tokenize the text
    differently across the split (checked for every history), that history is scored with its
    whole prompt as the prefix instead, so the result is always the exact probability of the
    full prompt. ``stats`` counts backend calls and rows.
    """

    def __init__(self, lm: Any, classes: Sequence[str], *, subject: str = "animal") -> None:
        if len(classes) < 2:
            raise ConfidantError("the posterior needs at least 2 classes")
        self.lm = lm
        self.classes = tuple(classes)
        self.subject = subject
        self.options = tuple(" " + c for c in self.classes)
        self.label = f"language model {getattr(lm, 'model_id', '?')}"
        self.model_key = str(getattr(lm, "model_id", "?"))
        self.stats = {"calls": 0, "histories": 0, "prefix_passes": 0, "rows": 0}
        self._lock = threading.Lock()

    # -- text ---------------------------------------------------------------------------------

    def prompt_text(self, history: Sequence[tuple[str, str]]) -> str:
        """The full prompt for ``history``, ending with the forced prefix "The animal is:"."""
        p = posterior_prompt(history, self.classes, subject=self.subject)
        return chat_text(self.lm, p.system, p.user, p.assistant_prefix)

    def split_text(self, history: Sequence[tuple[str, str]], line: int) -> tuple[str, str] | None:
        """(prefix, suffix) of the prompt text cut at the start of history line ``line``
        (0-based); None when the template changed the user text so no cut can be found."""
        p = posterior_prompt(history, self.classes, subject=self.subject)
        text = chat_text(self.lm, p.system, p.user, p.assistant_prefix)
        at = text.find(p.user)
        if at < 0 or not p.user.startswith(HISTORY_HEADER):
            return None
        offset = len(HISTORY_HEADER) + sum(len(x) + 1 for x in _history_lines(history)[:line])
        cut = at + offset
        return text[:cut], text[cut:]

    def _split_is_exact(self, prefix: str, suffix: str, prefix_ids: list[int] | None) -> bool:
        encode = getattr(self.lm, "_encode", None)
        prompt_ids = getattr(self.lm, "_prompt_ids", None)
        if encode is None or prompt_ids is None:
            return True  # the backend scores the concatenated text
        whole = prompt_ids(prefix + suffix, False)
        return whole == (prefix_ids or []) + (encode(suffix) if suffix else [])

    def plan(self, histories: Sequence[Sequence[tuple[str, str]]]) -> list[tuple[str, list]]:
        """The backend calls for ``histories``: a list of (prefix, [(row index, suffix)])."""
        by_base: dict[tuple, list[int]] = {}
        for i, h in enumerate(histories):
            if h:
                by_base.setdefault(tuple(map(tuple, h[:-1])), []).append(i)
        groups: dict[str, list[tuple[int, str]]] = {}
        alone: list[int] = [i for i, h in enumerate(histories) if not h]
        for members in by_base.values():
            line = len(histories[members[0]]) - 1 if len(members) > 1 else 0
            for i in members:
                cut = self.split_text(histories[i], line)
                if cut is None:
                    alone.append(i)
                else:
                    groups.setdefault(cut[0], []).append((i, cut[1]))
        prompt_ids = getattr(self.lm, "_prompt_ids", None)
        plan: list[tuple[str, list]] = []
        for prefix, rows in groups.items():
            prefix_ids = prompt_ids(prefix, False) if prompt_ids is not None else None
            exact = [(i, s) for i, s in rows if self._split_is_exact(prefix, s, prefix_ids)]
            kept = {i for i, _ in exact}
            alone.extend(i for i, _ in rows if i not in kept)
            if exact:
                plan.append((prefix, exact))
        for i in sorted(alone):
            plan.append((self.prompt_text(histories[i]), [(i, "")]))
        return plan

    # -- scoring ------------------------------------------------------------------------------

    def posterior_batch(self, histories: Sequence[Sequence[tuple[str, str]]]) -> np.ndarray:
        """(len(histories), K) posteriors, exact over every token of each class name."""
        histories = [list(h) for h in histories]
        out = np.empty((len(histories), len(self.classes)))
        plan = self.plan(histories)
        with self._lock:
            self.stats["calls"] += 1
            self.stats["histories"] += len(histories)
        for prefix, rows in plan:
            suffixes = [s for _, s in rows]
            scores = self.lm.score_tree(prefix, suffixes, list(self.options), chat=False)
            totals = np.array([[c.total_logprob for c in row] for row in scores], dtype=float)
            totals -= totals.max(axis=1, keepdims=True)
            weights = np.exp(totals)
            probs = weights / weights.sum(axis=1, keepdims=True)
            for (i, _), p in zip(rows, probs, strict=True):
                out[i] = p
            with self._lock:
                self.stats["prefix_passes"] += 1
                self.stats["rows"] += len(rows)
        return out

    __call__ = posterior_batch


def make_posterior(kind: str, class_set: ClassSet, lm: Any = None) -> Callable:
    """The ``posterior_batch`` callable of ``kind``: ``"llm"`` (:class:`LLMPosterior` over
    ``lm``) or ``"oracle"`` (the bank oracle of ``uq.cip.class_sets``, NOT a language model).
    The callable carries ``label`` (shown wherever results are) and ``model_key`` (what
    calibrations are stored under)."""
    if kind == "oracle":
        fn = oracle_posterior_batch(class_set)
        fn.model_key = ORACLE_MODEL_KEY  # type: ignore[attr-defined]
        return fn
    if kind == "llm":
        if lm is None:
            raise ConfidantError("the language-model posterior needs a model")
        return LLMPosterior(lm, class_set.classes)
    raise ConfidantError(f"posterior must be one of {', '.join(POSTERIOR_KINDS)}, got {kind!r}")


def posterior_label(posterior: Callable) -> str:
    return str(getattr(posterior, "label", ORACLE_POSTERIOR_LABEL))


# --------------------------------------------------------------------------------------------
# The answerer
# --------------------------------------------------------------------------------------------


class LLMAnswerer:
    """``answerer(label, query)``: the model role-plays the hidden class ``label`` and answers
    "yes" when p(" Yes") ≥ p(" No") under ``lm.choice_probs(prompt, [" Yes", " No"])`` (every
    token of each option, normalised over the two). Answers are cached per (label, query)."""

    def __init__(self, lm: Any, *, subject: str = "animal") -> None:
        self.lm = lm
        self.subject = subject
        self.label = f"language model {getattr(lm, 'model_id', '?')} role-playing the class"
        self._cache: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def prompt(self, label: str, query: str) -> str:
        return (
            f"We are playing 20 Questions. You are thinking of this {self.subject}: {label}. "
            f"Answer the question about the {self.subject} truthfully with one word, Yes or No. "
            f"Do not say the name of the {self.subject}.\n\nQuestion: {query}"
        )

    def yes_probability(self, label: str, query: str) -> float:
        key = (label, query)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        p_yes, _ = self.lm.choice_probs(self.prompt(label, query), [" Yes", " No"])
        with self._lock:
            self._cache[key] = float(p_yes)
        return float(p_yes)

    def knows(self, label: str, query: str) -> bool:
        """Whether the answer for (label, query) is cached (asking it costs no model call)."""
        with self._lock:
            return (label, query) in self._cache

    def __call__(self, label: str, query: str) -> str:
        return "yes" if self.yes_probability(label, query) >= 0.5 else "no"


# --------------------------------------------------------------------------------------------
# Open queries proposed by the model
# --------------------------------------------------------------------------------------------

_QUESTION_WORD = re.compile(r"[A-Za-z]")


def parse_proposed_questions(
    text: str, *, exclude: Sequence[str] = (), limit: int | None = None
) -> list[str]:
    """The questions in the first JSON object of ``text`` that has a ``"questions"`` list.

    Each entry must be a string with a letter in it, at most ``MAX_QUESTION_CHARS`` characters
    after collapsing whitespace (NUL and control characters are removed); a missing final "?"
    is added. Duplicates (ignoring case) and questions in ``exclude`` are dropped; at most
    ``limit`` are kept. Returns [] when no usable object is found (the caller retries).
    """
    if not isinstance(text, str):
        return []
    decoder = json.JSONDecoder()
    found: list[Any] | None = None
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("questions"), list):
            found = obj["questions"]
            break
    if not found:
        return []
    seen = {q.strip().casefold() for q in exclude}
    out: list[str] = []
    for item in found:
        if not isinstance(item, str):
            continue
        q = " ".join("".join(ch for ch in item if ch.isprintable()).split())
        if not q or not _QUESTION_WORD.search(q) or len(q) > MAX_QUESTION_CHARS:
            continue
        if not q.endswith("?"):
            q += "?"
        if q.casefold() in seen:
            continue
        seen.add(q.casefold())
        out.append(q)
        if limit is not None and len(out) >= limit:
            break
    return out


def proposal_prompt(classes: Sequence[str], history: Sequence[tuple[str, str]], m: int) -> str:
    """The querier prompt of C-IP's open query set (Chan et al. 2025, Appendix): the goal, the
    gathered answers, then "Now suggest {m} questions." with the JSON format."""
    names = ", ".join(f"'{c}'" for c in classes)
    lines = "\n".join(_history_lines(history)) or "(nothing yet)"
    return (
        f"We are playing 20 Questions. The animal is one of these: {names}. Your goal is to find "
        "it with as few yes/no questions as possible.\n\n"
        f"Here is the information gathered so far:\n{lines}\n\n"
        f"Now suggest {m} new yes/no questions about the animal. Do not name an animal and do "
        'not repeat a question. Reply with JSON only, in the form {"questions": ["...", "..."]}.'
    )


def propose_questions(
    lm: Any,
    classes: Sequence[str],
    history: Sequence[tuple[str, str]],
    *,
    m: int = 5,
    max_attempts: int = 3,
    seed: int = 0,
    temperature: float = 0.7,
    max_new_tokens: int = 200,
) -> list[str]:
    """Up to ``m`` new questions proposed by ``lm`` as JSON, sampled again (seed + attempt)
    until :func:`parse_proposed_questions` finds at least one usable question; raises
    ConfidantError after ``max_attempts`` failed replies."""
    if not 1 <= m <= 20:
        raise ConfidantError(f"the number of proposed questions must be 1..20, got {m}")
    if not 1 <= max_attempts <= 20:
        raise ConfidantError(f"max_attempts must be 1..20, got {max_attempts}")
    prompt = proposal_prompt(classes, history, m)
    asked = [q for q, _ in history]
    last = ""
    for attempt in range(max_attempts):
        params = SamplingParams(
            n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + attempt
        ).validate()
        last = lm.sample(prompt, params)[0].text
        questions = parse_proposed_questions(last, exclude=asked, limit=m)
        if questions:
            return questions
    raise ConfidantError(
        f"the model did not propose usable questions as JSON in {max_attempts} attempts "
        f"(last reply: {last[:200]!r}); use the closed question bank instead"
    )


def query_proposer(
    lm: Any, classes: Sequence[str], *, m: int = 5, max_attempts: int = 3, seed: int = 0
) -> Callable[[History], list[str]]:
    """A ``propose_queries(history)`` callable for ``uq.cip.game.Game`` (open query set); each turn
    samples with its own seed (seed + 100 × turn)."""

    def propose(history: History) -> list[str]:
        return propose_questions(
            lm, classes, history, m=m, max_attempts=max_attempts, seed=seed + 100 * len(history)
        )

    return propose
