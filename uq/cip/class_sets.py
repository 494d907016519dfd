"""20 Questions data: the class set and query bank, the posterior prompt, and a bank oracle.

A class set is a CSV of ``class,question,answer`` rows (answers ``yes``/``no``) with an answer
for every (class, question) pair. It becomes a :class:`ClassSet`: the class names, the questions
and a class × question boolean answer matrix (the "bank"). The game in ``uq/cip/game.py`` asks the
bank's questions, answers simulated draws from it, and scores the language model's posterior
p̂(class | history) through the prompt built by :func:`posterior_prompt`.

Source of the setting: Chan, Ge, Dobriban, Hassani & Vidal, "Conformal Information Pursuit for
Interactively Guiding Large Language Models" (NeurIPS 2025), §5.1 (20 Questions on AwA2 classes
with a closed bank of binary attribute queries). The class set shipped in
``data/twenty_questions/animals.csv`` was written for this project.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import ConfidantError
from core.reader import ReaderError, read_table, read_text

History = list[tuple[str, str]]

DEFAULT_CLASS_SET_PATH = (
    Path(__file__).resolve().parents[2] / "data" / "twenty_questions" / ("animals.csv")
)
REQUIRED_COLUMNS = ("class", "question", "answer")
MAX_CLASSES = 200
MAX_QUESTIONS = 1000
MAX_NAME_CHARS = 100
MAX_QUESTION_CHARS = 300
MAX_CSV_BYTES = 20_000_000
YES, NO = "yes", "no"

ORACLE_POSTERIOR_LABEL = "bank oracle (answers looked up in the class set; not a language model)"


class ClassSetError(ConfidantError):
    """A class-set CSV that cannot be used; the message says what to fix."""


@dataclass(frozen=True, eq=False)
class ClassSet:
    """Classes, questions and the class × question answer matrix (True = yes)."""

    name: str
    classes: tuple[str, ...]
    questions: tuple[str, ...]
    answers: np.ndarray  # bool, shape (n_classes, n_questions)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_questions(self) -> int:
        return len(self.questions)

    def class_index(self, label: str) -> int:
        try:
            return self._class_positions()[label]
        except KeyError:
            raise ClassSetError(
                f"unknown class {label!r} (not in class set {self.name!r})"
            ) from None

    def question_index(self, query: str) -> int:
        try:
            return self._question_positions()[query]
        except KeyError:
            raise ClassSetError(
                f"question {query!r} is not in the bank of class set {self.name!r}"
            ) from None

    def has_question(self, query: str) -> bool:
        return query in self._question_positions()

    def answer(self, label: str, query: str) -> str:
        """The bank's answer, ``"yes"`` or ``"no"``; usable as an answerer callable."""
        return YES if self.answers[self.class_index(label), self.question_index(query)] else NO

    def indistinguishable_groups(self) -> list[list[str]]:
        """Groups of classes with identical answers to every question (no question tells them
        apart); empty when every class can be identified from the bank."""
        groups: dict[bytes, list[str]] = {}
        for name, row in zip(self.classes, self.answers, strict=True):
            groups.setdefault(np.packbits(row).tobytes(), []).append(name)
        return [g for g in groups.values() if len(g) > 1]

    def to_csv(self) -> str:
        """The class set as ``class,question,answer`` CSV text (classes, then questions, in
        their stored order)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(REQUIRED_COLUMNS)
        for i, label in enumerate(self.classes):
            for j, query in enumerate(self.questions):
                writer.writerow([label, query, YES if self.answers[i, j] else NO])
        return out.getvalue()

    def fingerprint(self) -> str:
        """SHA-256 of the canonical CSV: identifies the content (for caching thresholds)."""
        return hashlib.sha256(self.to_csv().encode("utf-8")).hexdigest()

    # Lookups are cached on the (frozen) instance.
    def _class_positions(self) -> dict[str, int]:
        cached = self.__dict__.get("_class_pos")
        if cached is None:
            cached = {c: i for i, c in enumerate(self.classes)}
            object.__setattr__(self, "_class_pos", cached)
        return cached

    def _question_positions(self) -> dict[str, int]:
        cached = self.__dict__.get("_question_pos")
        if cached is None:
            cached = {q: j for j, q in enumerate(self.questions)}
            object.__setattr__(self, "_question_pos", cached)
        return cached


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------


def parse_class_set(text: str, name: str = "custom") -> ClassSet:
    """Parse and validate ``class,question,answer`` CSV text into a :class:`ClassSet`.

    Header names are matched case-insensitively; extra columns are ignored. Answers are
    ``yes``/``no`` in any case. Raises :class:`ClassSetError` for: an empty file, missing
    columns, blank cells, answers other than yes/no, a (class, question) pair given twice, a
    pair missing, class names differing only in case, fewer than 2 classes, or more than
    ``MAX_CLASSES`` classes / ``MAX_QUESTIONS`` questions.
    """
    if not isinstance(text, str):
        raise ClassSetError("the class set must be CSV text")
    try:
        text = read_text(text, name="the class set", max_bytes=MAX_CSV_BYTES)
        if not text.strip():
            raise ClassSetError("the class set file is empty")
        table = read_table(
            text,
            name="the class set",
            fmt="csv",
            max_bytes=MAX_CSV_BYTES,
            max_rows=MAX_CLASSES * MAX_QUESTIONS,  # more rows repeat a pair or pass a limit
        )
    except ReaderError as exc:
        raise ClassSetError(str(exc)) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ClassSetError(
            f"missing column(s) {', '.join(missing)}; the header must contain "
            f"class,question,answer (found: {', '.join(table.header) or 'nothing'})"
        )
    width = max(table.columns.index(c) for c in REQUIRED_COLUMNS) + 1

    classes: dict[str, int] = {}
    questions: dict[str, int] = {}
    cells: dict[tuple[int, int], bool] = {}
    for row in table.rows:
        line_no = row.number
        if not any((cell or "").strip() for cell in (*row.data.values(), *row.extra)):
            continue
        if any(row.data[c] is None for c in REQUIRED_COLUMNS):
            raise ClassSetError(f"line {line_no}: expected at least {width} cells")
        label, query, answer = (row.data[c].strip() for c in REQUIRED_COLUMNS)
        if not label or not query:
            raise ClassSetError(f"line {line_no}: the class and the question must not be blank")
        if len(label) > MAX_NAME_CHARS:
            raise ClassSetError(
                f"line {line_no}: class name longer than {MAX_NAME_CHARS} characters"
            )
        if len(query) > MAX_QUESTION_CHARS:
            raise ClassSetError(
                f"line {line_no}: question longer than {MAX_QUESTION_CHARS} characters"
            )
        value = answer.lower()
        if value not in (YES, NO):
            raise ClassSetError(
                f"line {line_no}: answer must be yes or no, got {answer!r} "
                f"(class {label!r}, question {query!r})"
            )
        i = classes.setdefault(label, len(classes))
        j = questions.setdefault(query, len(questions))
        if len(classes) > MAX_CLASSES:
            raise ClassSetError(f"too many classes: at most {MAX_CLASSES} are supported")
        if len(questions) > MAX_QUESTIONS:
            raise ClassSetError(f"too many questions: at most {MAX_QUESTIONS} are supported")
        if (i, j) in cells:
            raise ClassSetError(
                f"line {line_no}: duplicate pair (class {label!r}, question {query!r})"
            )
        cells[(i, j)] = value == YES

    if not cells:
        raise ClassSetError("the class set has a header but no rows")
    if len(classes) < 2:
        raise ClassSetError(f"a class set needs at least 2 classes, found {len(classes)}")
    folded: dict[str, str] = {}
    for label in classes:
        other = folded.setdefault(label.casefold(), label)
        if other != label:
            raise ClassSetError(f"class names {other!r} and {label!r} differ only in case")
    n_missing = len(classes) * len(questions) - len(cells)
    if n_missing:
        class_names, query_texts = list(classes), list(questions)
        examples = [
            f"({class_names[i]!r}, {query_texts[j]!r})"
            for i in range(len(classes))
            for j in range(len(questions))
            if (i, j) not in cells
        ][:3]
        raise ClassSetError(
            f"{n_missing} (class, question) pair(s) have no answer, e.g. {', '.join(examples)}; "
            "every class needs an answer to every question"
        )
    answers = np.zeros((len(classes), len(questions)), dtype=bool)
    for (i, j), value in cells.items():
        answers[i, j] = value
    answers.setflags(write=False)
    return ClassSet(name=name, classes=tuple(classes), questions=tuple(questions), answers=answers)


def read_class_set(path: str | Path, name: str | None = None) -> ClassSet:
    """Read and validate a class-set CSV file (see :func:`parse_class_set`)."""
    path = Path(path)
    try:
        text = read_text(path, name=f"class set {str(path)!r}", max_bytes=MAX_CSV_BYTES)
    except ReaderError as exc:
        raise ClassSetError(str(exc)) from None
    return parse_class_set(text, name=name or path.stem)


def load_default_class_set() -> ClassSet:
    """The project's animals class set, ``data/twenty_questions/animals.csv``."""
    return read_class_set(DEFAULT_CLASS_SET_PATH, name="animals")


# --------------------------------------------------------------------------------------------
# Answers and the posterior prompt
# --------------------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """``"yes"`` / ``"no"`` for the usual spellings ("Yes.", "y", "NO!"), otherwise the free-text
    answer stripped of surrounding whitespace. Raises ConfidantError for an empty answer."""
    if not isinstance(text, str) or not text.strip():
        raise ConfidantError("the answer must not be empty")
    stripped = text.strip()
    word = stripped.lower().rstrip(".!").strip()
    if word in ("yes", "y"):
        return YES
    if word in ("no", "n"):
        return NO
    return stripped


def render_answer(answer: str) -> str:
    """How an answer appears in a prompt: ``Yes.`` / ``No.`` for binary answers, else as given."""
    if answer == YES:
        return "Yes."
    if answer == NO:
        return "No."
    return answer


@dataclass(frozen=True)
class PosteriorPrompt:
    """A chat prompt whose assistant turn is forced to start with ``assistant_prefix``.

    p̂(class | history) is the probability of each option (``" " + class name``, every token of
    it) as the continuation of the assistant prefix, normalised over the options.
    """

    system: str
    user: str
    assistant_prefix: str
    options: tuple[str, ...]

    def as_text(self) -> str:
        """The same prompt as one plain string, for models without a chat template."""
        return f"{self.system}\n\n{self.user}\n\n{self.assistant_prefix}"


def posterior_prompt(
    history: Sequence[tuple[str, str]], classes: Sequence[str], *, subject: str = "animal"
) -> PosteriorPrompt:
    """The predictor prompt of C-IP's 20 Questions (Chan et al. 2025, Appendix): the class list,
    the history as numbered lines "k. {question} {answer}", and the forced assistant prefix
    "The animal is:" whose continuations are the options " " + class name. Each history line
    ends with a newline, so the text up to any line is shared by every history extending it."""
    if len(classes) < 2:
        raise ConfidantError("the posterior needs at least 2 classes")
    names = ", ".join(f"'{c}'" for c in classes)
    system = (
        f"You are playing 20 Questions. The {subject} is one of these: {names}. "
        f"Given the answers gathered so far, name the most likely {subject}."
    )
    if history:
        lines = [f"{k}. {q} {render_answer(a)}" for k, (q, a) in enumerate(history, start=1)]
        gathered = "Here is the information you have gathered.\n" + "\n".join(lines)
    else:
        gathered = "You have not gathered any information yet. Make your best guess."
    # The class list is in the system message only: the user turn ends right after the history,
    # so the part that differs between histories (the last line onwards) stays short.
    user = f"{gathered}\n\nWhich {subject} is it?"
    return PosteriorPrompt(
        system=system,
        user=user,
        assistant_prefix=f"The {subject} is:",
        options=tuple(" " + c for c in classes),
    )


# --------------------------------------------------------------------------------------------
# Bank oracle posterior (tests, offline fallback)
# --------------------------------------------------------------------------------------------


def oracle_posterior(
    class_set: ClassSet, history: Sequence[tuple[str, str]], *, floor: float = 1e-3
) -> np.ndarray:
    """The bank oracle p(class | history): not a language model.

    Each class gets weight ``floor ** m`` where m is the number of binary answers in the history
    that disagree with the bank for that class, then the weights are normalised. So the result is
    uniform over the classes consistent with every answer, with a small floor for the others
    (a class one answer away gets ``floor`` relative weight), and stays defined when a human
    contradicts the bank. Free-text answers and questions not in the bank carry no information.
    """
    if not 0.0 < floor < 1.0:
        raise ConfidantError(f"the oracle floor must be in (0, 1), got {floor}")
    mismatches = np.zeros(class_set.n_classes)
    for query, answer in history:
        if answer not in (YES, NO) or not class_set.has_question(query):
            continue
        column = class_set.answers[:, class_set.question_index(query)]
        mismatches += column != (answer == YES)
    weights = floor**mismatches
    return weights / weights.sum()


def oracle_posterior_batch(
    class_set: ClassSet, *, floor: float = 1e-3
) -> Callable[[list[History]], np.ndarray]:
    """A ``posterior_batch`` callable over the bank oracle (see :func:`oracle_posterior`);
    labelled ``ORACLE_POSTERIOR_LABEL`` wherever its results are shown."""

    if not 0.0 < floor < 1.0:
        raise ConfidantError(f"the oracle floor must be in (0, 1), got {floor}")
    # Disagreement of every class with each (question, yes/no) answer, looked up per turn.
    disagree = {
        (query, answer): (class_set.answers[:, j] != (answer == YES)).astype(float)
        for j, query in enumerate(class_set.questions)
        for answer in (YES, NO)
    }
    log_floor = np.log(floor)

    def posterior_batch(histories: list[History]) -> np.ndarray:
        mismatches = np.zeros((len(histories), class_set.n_classes))
        for i, history in enumerate(histories):
            for turn in history:
                row = disagree.get(tuple(turn))
                if row is not None:
                    mismatches[i] += row
        # floor ** m, normalised per row; shifting by the row minimum keeps it finite.
        logw = (mismatches - mismatches.min(axis=1, keepdims=True)) * log_floor
        weights = np.exp(logw)
        return weights / weights.sum(axis=1, keepdims=True)

    posterior_batch.label = ORACLE_POSTERIOR_LABEL  # type: ignore[attr-defined]
    return posterior_batch
