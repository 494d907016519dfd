"""One game of 20 Questions played by C-IP or IP: turns, stopping and the final guess."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from backends.base import prompt_sent
from core.errors import ConfidantError
from uq.cip.calibration import CalibrationResult, score_histories
from uq.cip.class_sets import ClassSet, normalize_answer
from uq.cip.conformal import (
    HYPOTHESIS_MODES,
    METHODS,
    Answerer,
    History,
    PosteriorBatch,
    prediction_set,
    should_stop,
)
from uq.cip.selection import SelectionStep, draw_hypotheses, select_query

# --------------------------------------------------------------------------------------------
# The game
# --------------------------------------------------------------------------------------------


@dataclass
class TurnRecord:
    """One state of a game: after ``turn`` answers (turn 0 is before any question).

    ``bound`` / ``expected_entropy`` are the chosen question's C-IP bound and IP estimate (bits)
    when it was selected; ``set_members`` is C_τ̂(turn)(history), every class at turn 0 (no
    threshold exists for an empty history); ``covered`` says whether the hidden class is in the
    set, when it is known (auto play). ``prompt_sent`` is the exact text a language-model
    posterior scored the classes after (this turn's history, chat template applied);
    ``roleplay_prompt_sent`` the text a role-playing model answered this turn's question from
    (auto play); both None when no model was asked.
    """

    turn: int
    query: str | None
    answer: str | None
    set_members: list[str]
    set_size: int
    tau: float | None
    bound: float | None
    expected_entropy: float | None
    score_std: float | None
    posterior_top: list[tuple[str, float]]
    guess: str
    covered: bool | None = None
    n_scored: int = 0
    prompt_sent: str | None = None
    roleplay_prompt_sent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Game:
    """20 Questions as a state machine: ask → answer → update posterior → conformal set.

    Human play: ``q = game.next_question()`` then ``game.answer("yes")``, until ``q`` is None.
    Auto play: ``game.play(lambda q: class_set.answer(hidden, q))``.

    The querier chooses among the bank questions not asked yet (or ``propose_queries(history)``
    for open queries) with ``method`` ("cip", "ip" or "random"). Hypothetical answers come from
    ``answerer(label, query)`` (the bank by default). The game stops after ``max_queries``
    questions, when no candidate is left, or when the candidates' objective values have
    standard deviation below ``epsilon`` (None disables the rule), or, with
    ``stop_on_single_class``, as soon as the prediction set holds a single class (nothing is
    left to tell apart at the calibrated level). Every random draw comes from ``seed``.
    Hypothetical labels are drawn from the posterior by default (``hypotheses="uniform"`` is
    the paper's choice, which plays worse late in a game; see :func:`select_query`).
    """

    class_set: ClassSet
    posterior_batch: PosteriorBatch
    calibration: CalibrationResult
    method: str = "cip"
    n_est: int = 4
    max_queries: int = 20
    epsilon: float | None = None
    hypotheses: str = "posterior"
    answerer: Answerer | None = None
    propose_queries: Callable[[History], list[str]] | None = None
    seed: int | tuple[int, ...] = 0
    top_k: int = 5
    truth: str | None = None
    stop_on_single_class: bool = True
    history: History = field(default_factory=list, init=False)
    turns: list[TurnRecord] = field(default_factory=list, init=False)
    finished: bool = field(default=False, init=False)
    stop_reason: str | None = field(default=None, init=False)
    pending: SelectionStep | None = field(default=None, init=False, repr=False)
    posterior: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfidantError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.hypotheses not in HYPOTHESIS_MODES:
            raise ConfidantError(f"hypotheses must be one of {', '.join(HYPOTHESIS_MODES)}")
        if self.calibration.n_classes != self.class_set.n_classes:
            raise ConfidantError(
                f"the calibration is for {self.calibration.n_classes} classes, the class set "
                f"has {self.class_set.n_classes}"
            )
        if not 1 <= self.max_queries <= self.calibration.max_length:
            raise ConfidantError(
                f"max_queries must be between 1 and {self.calibration.max_length} "
                "(the longest calibrated history)"
            )
        if self.n_est < 1:
            raise ConfidantError(f"n_est must be positive, got {self.n_est}")
        if self.epsilon is not None and not (math.isfinite(self.epsilon) and self.epsilon >= 0):
            raise ConfidantError(f"epsilon must be a non-negative number, got {self.epsilon}")
        if self.truth is not None:
            self.class_set.class_index(self.truth)
        self._rng = np.random.default_rng(self.seed)
        self._cache: dict[tuple, np.ndarray] = {}
        self._prepared: tuple[list[str], np.ndarray | None] | None = None

    # -- state --------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(self.turns)

    @property
    def guess(self) -> str | None:
        return self.turns[-1].guess if self.turns else None

    def start(self) -> TurnRecord:
        """Score the empty history and record turn 0 (the prior guess)."""
        if self.started:
            return self.turns[0]
        probs, n_scored = score_histories(self.posterior_batch, [[]], self.class_set.n_classes)
        return self._record(probs[0], None, None, None, n_scored)

    def _candidates(self) -> list[str]:
        asked = {q for q, _ in self.history}
        if self.propose_queries is not None:
            proposed = [q for q in self.propose_queries(list(self.history)) if q not in asked]
            return list(dict.fromkeys(proposed))
        return [q for q in self.class_set.questions if q not in asked]

    def _finish(self, reason: str) -> None:
        self.finished, self.stop_reason, self.pending = True, reason, None

    def _default_answerer(self, label: str, query: str) -> str:
        return self.class_set.answer(label, query)

    def _stop_now(self) -> str | None:
        k = len(self.history)
        if k >= self.max_queries:
            return "max_queries"
        if self.stop_on_single_class and k and self.turns[-1].set_size == 1:
            return "single_class"
        return None

    def _prepare(self) -> tuple[list[str], np.ndarray | None]:
        """The next choice's candidates and hypothetical labels, drawn once and kept."""
        if self._prepared is None:
            candidates = self._candidates()
            labels = None
            if candidates and self.method != "random":
                labels = draw_hypotheses(
                    self.class_set.n_classes,
                    self.n_est,
                    self._rng,
                    mode=self.hypotheses,
                    posterior=self.posterior,
                )
            self._prepared = (candidates, labels)
        return self._prepared

    def upcoming_answers(self) -> list[tuple[str, str]]:
        """The (hypothetical class, question) pairs the next :meth:`next_question` will ask the
        answerer about: distinct labels × candidate questions, drawn now and kept for it. A
        caller can ask a slow answerer (a model role-playing each class, whose answers it
        caches) these pairs in short steps with progress. Empty when no choice is pending."""
        if not self.started:
            self.start()
        if self.finished or self.pending is not None or self._stop_now():
            return []
        candidates, labels = self._prepare()
        if labels is None:
            return []
        names = [self.class_set.classes[int(y)] for y in dict.fromkeys(labels.tolist())]
        return [(name, q) for name in names for q in candidates]

    def next_question(self) -> str | None:
        """Choose the next question, or None when the game is over (see ``stop_reason``)."""
        if not self.started:
            self.start()
        if self.finished:
            return None
        if self.pending is not None:
            return self.pending.chosen
        reason = self._stop_now()
        if reason:
            self._finish(reason)
            return None
        candidates, labels = self._prepare()
        self._prepared = None
        if not candidates:
            self._finish("no_questions_left")
            return None
        k = len(self.history)
        self._cache = {}
        step = select_query(
            self.method,
            self.history,
            candidates,
            self.class_set.classes,
            self.posterior_batch,
            self.answerer or self._default_answerer,
            self._rng,
            tau=self.calibration.threshold_for_length(k + 1),
            alpha=self.calibration.alpha,
            n_est=self.n_est,
            hypotheses=self.hypotheses,
            posterior=self.posterior,
            cache=self._cache,
            labels=labels,
        )
        if self.method != "random" and should_stop(step.scores, self.epsilon):
            self._finish("bounds_settled")
            return None
        self.pending = step
        return step.chosen

    def answer(self, text: str) -> TurnRecord:
        """Record the answer to the pending question, update the posterior and the set."""
        if self.pending is None:
            raise ConfidantError("there is no question waiting for an answer")
        step = self.pending
        answer = normalize_answer(text)
        self.history.append((step.chosen, answer))
        probs, n_scored = score_histories(
            self.posterior_batch, [self.history], self.class_set.n_classes, cache=self._cache
        )
        self.pending = None
        j = step.chosen_index
        return self._record(
            probs[0],
            step,
            None if step.bounds is None else step.bounds[j],
            None if step.expected_entropies is None else step.expected_entropies[j],
            step.n_scored + n_scored,
        )

    def _record(
        self,
        probs: np.ndarray,
        step: SelectionStep | None,
        bound: float | None,
        expected_entropy: float | None,
        n_scored: int,
    ) -> TurnRecord:
        self.posterior = probs
        k = len(self.history)
        classes = self.class_set.classes
        if k == 0:
            tau, members = None, np.ones(len(classes), dtype=bool)
        else:
            tau = self.calibration.threshold_for_length(k)
            members = prediction_set(probs, tau)
        order = np.argsort(-probs, kind="stable")
        covered = None
        if self.truth is not None:
            covered = bool(members[self.class_set.class_index(self.truth)])
        prompt_of = getattr(self.posterior_batch, "prompt_text", None)
        record = TurnRecord(
            turn=k,
            query=self.history[-1][0] if k else None,
            answer=self.history[-1][1] if k else None,
            set_members=[classes[i] for i in order if members[i]],
            set_size=int(members.sum()),
            tau=tau,
            bound=bound,
            expected_entropy=expected_entropy,
            score_std=None if step is None else step.score_std,
            posterior_top=[(classes[i], float(probs[i])) for i in order[: self.top_k]],
            guess=classes[int(order[0])],
            covered=covered,
            n_scored=n_scored,
            prompt_sent=prompt_of(list(self.history)) if callable(prompt_of) else None,
            roleplay_prompt_sent=self._roleplay_prompt(),
        )
        self.turns.append(record)
        return record

    def _roleplay_prompt(self) -> str | None:
        """What a role-playing model answered the last question from (auto play with a model
        answerer: the hidden class is known), chat template applied; None otherwise."""
        lm = getattr(self.answerer, "lm", None)
        make = getattr(self.answerer, "prompt", None)
        if not self.history or self.truth is None or lm is None or not callable(make):
            return None
        return prompt_sent(lm, make(self.truth, self.history[-1][0]))

    def play(self, answer_fn: Callable[[str], str]) -> list[TurnRecord]:
        """Auto play to the end: ``answer_fn(query)`` answers for the hidden class."""
        while (query := self.next_question()) is not None:
            self.answer(answer_fn(query))
        return self.turns

    def first_correct_turn(self) -> int | None:
        """The number of answers at the first turn whose guess is ``truth`` (None if never)."""
        if self.truth is None:
            raise ConfidantError("the hidden class is not known to this game")
        return next((t.turn for t in self.turns if t.guess == self.truth), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n_est": self.n_est,
            "max_queries": self.max_queries,
            "epsilon": self.epsilon,
            "hypotheses": self.hypotheses,
            "stop_on_single_class": self.stop_on_single_class,
            "seed": list(self.seed) if isinstance(self.seed, tuple) else self.seed,
            "alpha": self.calibration.alpha,
            "class_set": self.class_set.name,
            "class_set_fingerprint": self.class_set.fingerprint(),
            "truth": self.truth,
            "finished": self.finished,
            "stop_reason": self.stop_reason,
            "turns": [t.to_dict() for t in self.turns],
        }
