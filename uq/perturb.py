"""Perturbations of a question for Inv-Entropy: LLM paraphrases and GAAP.

Song, Ji, Shi, Lai, Al Kontar (2025), "Inv-Entropy", arXiv 2506.09684, §2.6 and Appendix C.
The number of perturbations is the same for every question (default 9), so that the
distributions of different questions live on the same scale.

* Paraphrases: :func:`paraphrase_prompt` asks an LLM; :func:`parse_paraphrases` reads whatever
  it answers and returns exactly n (random duplication if too few, sampling if too many).
* GAAP (Genetic Algorithm-based Adversarial Perturbation), which the authors describe but never
  released: :func:`gaap`. Key words are chosen KeyBERT-style with the embedding function; each
  key word gets a substitution set (WordNet synonyms, hypernyms and hyponyms when a WordNet
  database is available, otherwise the embedding model's nearest words in a vocabulary, or an
  LLM's suggestions), plus deletion. Roulette-wheel selection by similarity to the original,
  single-point crossover and one-token mutation evolve the population; the output is sampled
  across generations and every returned perturbation has similarity ≥ δ to the original.

All model access goes through callables: ``embed(texts) -> array (len(texts), d)``.

Example with a toy embedding (a real one is a sentence-transformer's ``encode``)::

    >>> import numpy as np
    >>> def embed(texts):
    ...     out = np.zeros((len(texts), 26))
    ...     for row, text in enumerate(texts):
    ...         for ch in text.lower():
    ...             if "a" <= ch <= "z":
    ...                 out[row, ord(ch) - 97] += 1
    ...     return out + 1e-3
    >>> result = gaap("Which river flows through the city of Paris?", embed, n=3, seed=1,
    ...               source="custom", substitutes=lambda w: {"river": ["stream"]}.get(w, []))
    >>> len(result.perturbations), min(result.similarities) >= result.delta
    (3, True)
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from backends.base import ConfidantError

__all__ = [
    "DEFAULT_N_PERTURBATIONS",
    "GaapResult",
    "PARAPHRASE_SYSTEM_PROMPT",
    "WordNetDatabase",
    "embedding_substitutes",
    "extract_key_words",
    "find_wordnet_directory",
    "force_count",
    "gaap",
    "paraphrase_prompt",
    "parse_paraphrases",
    "wordnet_substitutes",
]

DEFAULT_N_PERTURBATIONS = 9
PARAPHRASE_SYSTEM_PROMPT = "You are a helpful assistant that paraphrases sentences."

Embed = Callable[[list[str]], np.ndarray]
Substitutes = Callable[[str], Sequence[str]]


# --------------------------------------------------------------------------- paraphrases


def paraphrase_prompt(question: str, n: int = DEFAULT_N_PERTURBATIONS) -> str:
    """The user message asking an LLM for n paraphrases.

    Song et al. (2025), Appendix: "Please provide {n} paraphrases for this sentence: …", with a
    format request so the reply is easy to parse (send with :data:`PARAPHRASE_SYSTEM_PROMPT`).
    """
    if not question or not question.strip():
        raise ConfidantError("the question is empty")
    if n < 1:
        raise ConfidantError(f"n must be at least 1, got {n}")
    return (
        f"Please provide {n} paraphrases for this sentence: {question.strip()}\n"
        f"Write each paraphrase on its own line, numbered 1 to {n}, with no other text."
    )


def force_count(items: Sequence[str], n: int, rng: np.random.Generator | int | None) -> list[str]:
    """Exactly n items: random duplicates appended if too few, a random subset if too many.

    Song et al. (2025), §2.6: the perturbation count must be equal for every question. The
    subset keeps the original order; ``rng`` is a numpy Generator or a seed.
    """
    if n < 1:
        raise ConfidantError(f"n must be at least 1, got {n}")
    if not items:
        raise ConfidantError("there is nothing to duplicate: no perturbation was found")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    items = list(items)
    if len(items) > n:
        keep = np.sort(generator.choice(len(items), size=n, replace=False))
        return [items[i] for i in keep]
    extra = generator.choice(len(items), size=n - len(items), replace=True)
    return items + [items[i] for i in extra]


_LIST_MARKER = re.compile(
    r"^\s*(?:\(?\d{1,3}\s*[.):\]]|\d{1,3}\s+-|[-*•·–—+]|\(?[a-zA-Z][.)](?=\s))\s*"
)
_LABEL = re.compile(
    r"^\s*(?:paraphrase|version|option|rephrased|variant)\s*\d*\s*[:.)\-–]\s*", re.I
)
_QUOTES = "\"'“”‘’`«»"


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _clean_item(text: str) -> str:
    # Control characters (a model can emit any byte) never belong in a question.
    text = "".join(ch for ch in text if ch.isprintable())
    text = re.sub(r"\*\*|__", "", text).strip()
    text = text.rstrip(",").strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text.strip(_QUOTES).strip()


def _json_items(text: str) -> list[str] | None:
    start, end = text.find("["), text.rfind("]")
    candidates = [text[start : end + 1]] if 0 <= start < end else []
    brace_start, brace_end = text.find("{"), text.rfind("}")
    if 0 <= brace_start < brace_end:
        candidates.append(text[brace_start : brace_end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            lists = [v for v in value.values() if isinstance(v, list)]
            value = lists[0] if lists else None
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
    return None


def _line_items(text: str) -> list[str]:
    lines = [re.sub(r"\*\*|__", "", line) for line in text.splitlines() if line.strip()]
    marked = [bool(_LIST_MARKER.match(line) or _LABEL.match(line)) for line in lines]
    if any(marked):
        # A list with a preamble or a closing remark: keep only the list entries.
        lines = [line for line, is_item in zip(lines, marked, strict=True) if is_item]
    items = []
    for line in lines:
        item = _LABEL.sub("", _LIST_MARKER.sub("", line, count=1), count=1)
        stripped = item.strip()
        if not stripped or (stripped.endswith(":") and not _LIST_MARKER.match(line)):
            continue  # "Here are 9 paraphrases:"
        if stripped.startswith("```"):
            continue
        items.append(item)
    return items


def parse_paraphrases(
    text: str,
    n: int = DEFAULT_N_PERTURBATIONS,
    seed: int | np.random.Generator | None = 0,
    question: str | None = None,
) -> list[str]:
    """Read an LLM's list of paraphrases and return exactly n of them.

    Accepts numbered or bulleted lists, JSON arrays (or an object holding one), quoted lines,
    blank lines, a preamble line and a closing remark; drops the original question if it is
    echoed back (when ``question`` is given) and exact duplicates. Then forces the count as in
    Song et al. (2025), §2.6: random duplication if fewer than n, seeded sampling if more
    (:func:`force_count`). Raises :class:`ConfidantError` if the reply holds no paraphrase.
    """
    if text is None or not str(text).strip():
        raise ConfidantError("the paraphrase reply is empty")
    raw = _json_items(text)
    if raw is None:
        raw = _line_items(text)
    original = _normalised(question) if question else None
    seen: set[str] = set()
    items: list[str] = []
    for candidate in raw:
        item = _clean_item(candidate)
        key = _normalised(item)
        if not key or key == original or key in seen:
            continue
        if original and re.match(r"^(?:original(?: question| sentence)?)\s*:", item, re.I):
            continue
        seen.add(key)
        items.append(item)
    if not items:
        raise ConfidantError("no paraphrase could be read from the reply")
    return force_count(items, n, seed)


# --------------------------------------------------------------------------- WordNet


_POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}
_MORPHY_RULES = {
    "noun": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
             ("men", "man"), ("ies", "y")],
    "verb": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""),
             ("ing", "e"), ("ing", "")],
    "adj": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "adv": [],
}  # fmt: skip
_RELATIONS = {"@": "hypernyms", "@i": "hypernyms", "~": "hyponyms", "~i": "hyponyms"}
_WORDNET_CANDIDATES = (
    "/usr/share/wordnet",  # Debian/Ubuntu package wordnet-base
    "/usr/share/wordnet/dict",
    "/usr/local/WordNet-3.0/dict",
    "/opt/homebrew/share/wordnet/dict",
)


def find_wordnet_directory() -> Path | None:
    """A directory holding the Princeton WordNet database (index.noun, data.noun, ...).

    Looks at ``$CONFIDANT_WORDNET_DIR`` first, then the usual system locations (Debian's
    ``wordnet-base`` installs ``/usr/share/wordnet``). None if no database is found.
    """
    configured = os.environ.get("CONFIDANT_WORDNET_DIR")
    for candidate in ([configured] if configured else []) + list(_WORDNET_CANDIDATES):
        path = Path(candidate)
        if (path / "index.noun").is_file() and (path / "data.noun").is_file():
            return path
    return None


class WordNetDatabase:
    """Synonyms, hypernyms and hyponyms read from the Princeton WordNet database files.

    Reads the documented plain-text format (wndb(5WN)): ``index.<pos>`` maps a lemma to synset
    byte offsets in ``data.<pos>``, whose lines list the synset's words and its pointers
    (``@``/``@i`` hypernym, ``~``/``~i`` hyponym). Inflected forms are reduced with the
    ``<pos>.exc`` exception lists and morphy's suffix rules (morphy(7WN)).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        if not (self.directory / "index.noun").is_file():
            raise ConfidantError(f"no WordNet database (index.noun) in {self.directory}")
        self._index: dict[str, list[tuple[str, list[int]]]] | None = None
        self._exceptions: dict[str, dict[str, list[str]]] | None = None

    def _load(self) -> None:
        index: dict[str, list[tuple[str, list[int]]]] = {}
        exceptions: dict[str, dict[str, list[str]]] = {}
        for pos in ("noun", "verb", "adj", "adv"):
            path = self.directory / f"index.{pos}"
            if path.is_file():
                with open(path, encoding="utf-8", errors="replace") as handle:
                    for line in handle:
                        if line.startswith(" "):
                            continue  # licence header
                        parts = line.split()
                        if len(parts) < 6:
                            continue
                        synset_count, pointer_count = int(parts[2]), int(parts[3])
                        start = 4 + pointer_count + 2
                        offsets = [int(o) for o in parts[start : start + synset_count]]
                        index.setdefault(parts[0], []).append((pos, offsets))
            exc_path = self.directory / f"{pos}.exc"
            table: dict[str, list[str]] = {}
            if exc_path.is_file():
                with open(exc_path, encoding="utf-8", errors="replace") as handle:
                    for line in handle:
                        parts = line.split()
                        if len(parts) >= 2:
                            table.setdefault(parts[0], []).extend(parts[1:])
            exceptions[pos] = table
        self._index, self._exceptions = index, exceptions

    def lemmas(self, word: str) -> list[tuple[str, str, list[int]]]:
        """(pos, base form, synset offsets) for every base form of ``word`` in the index."""
        if self._index is None:
            self._load()
        assert self._index is not None and self._exceptions is not None
        form = word.strip().lower().replace(" ", "_")
        found: list[tuple[str, str, list[int]]] = []
        for pos in ("noun", "verb", "adj", "adv"):
            bases = [form] + self._exceptions[pos].get(form, [])
            bases += [
                form[: -len(suffix)] + ending
                for suffix, ending in _MORPHY_RULES[pos]
                if form.endswith(suffix) and len(form) > len(suffix)
            ]
            for base in dict.fromkeys(bases):
                for entry_pos, offsets in self._index.get(base, []):
                    if entry_pos == pos:
                        found.append((pos, base, offsets))
        return found

    def _synset(self, handles: dict, pos: str, offset: int) -> tuple[list[str], list[tuple]]:
        handle = handles.get(pos)
        if handle is None:
            handle = handles[pos] = open(self.directory / f"data.{pos}", "rb")  # noqa: SIM115
        handle.seek(offset)
        head = handle.readline().decode("utf-8", errors="replace").split(" | ")[0].split()
        word_count = int(head[3], 16)
        words = [re.sub(r"\(\w+\)$", "", w) for w in head[4 : 4 + 2 * word_count : 2]]
        at = 4 + 2 * word_count
        pointer_count = int(head[at])
        pointers = [
            (head[at + 1 + 4 * k], int(head[at + 2 + 4 * k]), _POS_FILES[head[at + 3 + 4 * k]])
            for k in range(pointer_count)
        ]
        return words, pointers

    def related_words(self, word: str) -> dict[str, list[str]]:
        """Synonyms, hypernyms and hyponyms of every sense of ``word``, most frequent sense first.

        Multi-word lemmas come with spaces; the word itself is left out.
        """
        entries = self.lemmas(word)
        own = {word.strip().lower()} | {base.replace("_", " ") for _, base, _ in entries}
        related: dict[str, list[str]] = {"synonyms": [], "hypernyms": [], "hyponyms": []}
        handles: dict = {}
        try:
            for pos, _, offsets in entries:
                for offset in offsets:
                    words, pointers = self._synset(handles, pos, offset)
                    related["synonyms"].extend(words)
                    for symbol, target, target_pos in pointers:
                        relation = _RELATIONS.get(symbol)
                        if relation:
                            related[relation].extend(self._synset(handles, target_pos, target)[0])
        finally:
            for handle in handles.values():
                handle.close()
        for relation, words in related.items():
            cleaned = (w.replace("_", " ") for w in words)
            related[relation] = [w for w in dict.fromkeys(cleaned) if w.lower() not in own]
        return related

    def substitutes(self, word: str) -> list[str]:
        """SUB(t) without deletion: synonyms ∪ hypernyms ∪ hyponyms (Song et al. 2025, App. C)."""
        related = self.related_words(word)
        merged = related["synonyms"] + related["hypernyms"] + related["hyponyms"]
        return list(dict.fromkeys(merged))


def wordnet_substitutes(directory: str | os.PathLike | None = None) -> Substitutes | None:
    """WordNet substitution function, or None when no WordNet database is installed."""
    path = Path(directory) if directory is not None else find_wordnet_directory()
    if path is None or not (path / "index.noun").is_file():
        return None
    return _shared_database(path.resolve()).substitutes


@functools.lru_cache(maxsize=4)
def _shared_database(path: Path) -> WordNetDatabase:
    # Reading the index takes seconds; one database per directory serves the whole process.
    return WordNetDatabase(path)


# --------------------------------------------------------------------------- embeddings


class _EmbeddingCache:
    """Unit-normalised embeddings of strings; each distinct string is embedded once."""

    def __init__(self, embed: Embed):
        self.embed = embed
        self._vectors: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            vectors = np.asarray(self.embed(missing), dtype=float)
            if vectors.ndim != 2 or vectors.shape[0] != len(missing):
                raise ConfidantError(
                    f"embed returned shape {vectors.shape} for {len(missing)} texts; "
                    "expected one row per text"
                )
            if not np.all(np.isfinite(vectors)):
                raise ConfidantError("embed returned NaN or infinite values")
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            if np.any(norms == 0):
                raise ConfidantError("embed returned a zero vector")
            for text, vector in zip(missing, vectors / norms, strict=True):
                self._vectors[text] = vector
        if not texts:
            return np.zeros((0, 0))
        return np.stack([self._vectors[t] for t in texts])


def _similarity_from_cosine(cosine: np.ndarray, rule: str) -> np.ndarray:
    if rule == "shifted":
        return (1.0 + cosine) / 2.0
    if rule == "absolute":
        return np.abs(cosine)
    if rule == "cosine":
        return cosine
    raise ConfidantError(f"unknown similarity rule {rule!r}; use shifted, absolute or cosine")


_WORD = re.compile(r"\w+(?:['’-]\w+)*")


def _is_content_word(word: str) -> bool:
    return (
        len(word) > 1 and any(c.isalpha() for c in word) and word.lower() not in ENGLISH_STOP_WORDS
    )


def extract_key_words(
    question: str, embed: Embed, n_words: int, *, _cache: _EmbeddingCache | None = None
) -> list[tuple[str, float]]:
    """KeyBERT-style key words: content words ranked by cos(ψ(word), ψ(question)).

    Grootendorst (2020), KeyBERT, as used by GAAP (Song et al. 2025, §2.6). Stop words
    (scikit-learn's English list), one-letter tokens and numbers are skipped. Returns up to
    ``n_words`` (word, cosine) pairs, best first; one batched ``embed`` call.
    """
    cache = _cache or _EmbeddingCache(embed)
    words = list(dict.fromkeys(w for w in _WORD.findall(question) if _is_content_word(w)))
    if not words or n_words < 1:
        return []
    vectors = cache([question] + words)
    scores = vectors[1:] @ vectors[0]
    order = np.argsort(-scores, kind="stable")[:n_words]
    return [(words[i], float(scores[i])) for i in order]


def embedding_substitutes(
    embed: Embed,
    vocabulary: Iterable[str],
    k: int = 10,
    *,
    _cache: _EmbeddingCache | None = None,
) -> Substitutes:
    """Substitutes from the embedding's neighbourhood: the k vocabulary words nearest by cosine.

    Used by GAAP when no WordNet database is available. The vocabulary (content words only,
    stop words removed) is embedded once, in one call, the first time it is needed.
    """
    words = list(dict.fromkeys(w.strip() for w in vocabulary if _is_content_word(w.strip())))
    cache = _cache or _EmbeddingCache(embed)

    def substitutes(word: str) -> list[str]:
        candidates = [w for w in words if w.lower() != word.lower()]
        if not candidates:
            return []
        vectors = cache([word] + words)
        keep = [i + 1 for i, w in enumerate(words) if w.lower() != word.lower()]
        scores = vectors[keep] @ vectors[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return [candidates[i] for i in order]

    return substitutes


# --------------------------------------------------------------------------- GAAP

Token = tuple[str, str]  # (text, whitespace that followed it)
Individual = tuple[Token, ...]

_TOKEN = re.compile(r"(\w+(?:['’-]\w+)*|[^\w\s])(\s*)")


def _tokenise(text: str) -> Individual:
    return tuple((m.group(1), " " if m.group(2) else "") for m in _TOKEN.finditer(text.strip()))


def _render(individual: Individual) -> str:
    pieces = []
    for index, (word, space) in enumerate(individual):
        following = individual[index + 1][0] if index + 1 < len(individual) else ""
        # Recombination can put two words side by side that had no space between them.
        if not space and _WORD.match(word[-1:]) and _WORD.match(following[:1]):
            space = " "
        pieces.append(word + space)
    text = "".join(pieces).strip()
    return re.sub(r"\s+([.,?!;:])", r"\1", text)


def _match_case(substitute: str, original: str) -> str:
    if substitute and original[:1].isupper() and substitute[:1].islower():
        return substitute[0].upper() + substitute[1:]
    return substitute


@dataclass
class GaapResult:
    """GAAP perturbations with their similarity to the original and where they came from.

    ``perturbations[k]`` was drawn from generation ``generations[k]`` and has similarity
    ``similarities[k]`` ≥ ``delta`` to ``original`` (rule ``similarity_rule`` on the cosine).
    ``substitution_source`` is "wordnet", "embedding", "llm" or "custom".
    """

    original: str
    perturbations: list[str]
    similarities: list[float]
    generations: list[int]
    key_words: list[str]
    substitution_sets: dict[str, list[str]]
    substitution_source: str
    n_generations: int
    best_similarity_per_generation: list[float]
    population_sizes: list[int]
    stop_reason: str
    n_distinct: int
    seed: int
    delta: float
    similarity_rule: str
    parameters: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _choose_source(
    source: str,
    substitutes: Substitutes | None,
    llm_substitutes: Substitutes | None,
    vocabulary: Sequence[str],
    question: str,
    cache: _EmbeddingCache,
    wordnet_directory: str | os.PathLike | None,
) -> tuple[str, Substitutes]:
    if source not in {"auto", "wordnet", "embedding", "llm", "custom"}:
        raise ConfidantError(f"unknown substitution source {source!r}")
    if source in {"auto", "custom"} and substitutes is not None:
        return "custom", substitutes
    if source == "custom":
        raise ConfidantError("source='custom' needs a substitutes callable")
    if source in {"auto", "wordnet"}:
        from_wordnet = wordnet_substitutes(wordnet_directory)
        if from_wordnet is not None:
            return "wordnet", from_wordnet
        if source == "wordnet":
            raise ConfidantError(
                "no WordNet database found; install one (Debian: apt-get install wordnet-base) "
                "or set CONFIDANT_WORDNET_DIR"
            )
    if source in {"auto", "llm"} and llm_substitutes is not None:
        return "llm", llm_substitutes
    if source == "llm":
        raise ConfidantError("source='llm' needs an llm_substitutes callable")
    words = _WORD.findall(question) + list(vocabulary)
    return "embedding", embedding_substitutes(cache.embed, words, _cache=cache)


def _roulette(
    rng: np.random.Generator, population: list[Individual], fitness: np.ndarray, size: int
) -> list[Individual]:
    weights = np.clip(fitness, 0.0, None)
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    picks = rng.choice(len(population), size=size, replace=True, p=weights / weights.sum())
    return list(dict.fromkeys(population[i] for i in picks))


def _crossover(rng: np.random.Generator, a: Individual, b: Individual) -> list[Individual]:
    shorter = min(len(a), len(b))
    if shorter < 2:
        return []
    cut = int(rng.integers(1, shorter))  # h ∈ {1..p−1}
    return [a[:cut] + b[cut:], b[:cut] + a[cut:]]


def gaap(
    question: str,
    embed: Embed,
    n: int = DEFAULT_N_PERTURBATIONS,
    *,
    seed: int = 0,
    delta: float = 0.7,
    max_generations: int = 10,
    population_size: int = 32,
    sample_every: int = 1,
    key_ratio: float = 0.4,
    max_substitutes: int = 12,
    source: str = "auto",
    substitutes: Substitutes | None = None,
    llm_substitutes: Substitutes | None = None,
    vocabulary: Sequence[str] = (),
    wordnet_directory: str | os.PathLike | None = None,
    similarity_rule: str = "shifted",
) -> GaapResult:
    """GAAP: genetic perturbation of a question (Song et al. 2025, §2.6 and Appendix C).

    1. Key words: q = max(1, int(key_ratio · p)) of the p words, KeyBERT-style
       (:func:`extract_key_words`). Only key words (and what replaced them) are ever changed.
    2. SUB(t) = substitutes(t) ∪ {∅} (∅ deletes the word). Source: ``substitutes`` if given,
       else WordNet synonyms ∪ hypernyms ∪ hyponyms when a database is found, else
       ``llm_substitutes``, else the embedding's nearest words among the question's words and
       ``vocabulary``; ``source`` forces one. Sets larger than ``max_substitutes`` keep the
       candidates most similar to the key word. A replacement draws from the set of the key
       word it descends from.
    3. Pop_0: every single key-word substitution or deletion of the question.
    4. Fitness Sim(x0, x) = rule(cos(ψ(x0), ψ(x))), rule (1 + cos)/2 by default (the paper's
       Sim). Pa_t: ``population_size`` roulette-wheel draws, P(i) ∝ Sim(x0, x_i); Off_t:
       single-point crossover of random parent pairs at h ∈ {1..p−1}; Mu_t: each child with
       one mutable token replaced by a uniform draw from its SUB. Pop_{t+1} = Pa ∪ Off ∪ Mu.
    5. Stop when max_i Sim(x0, x_i) < δ or after ``max_generations``.
    6. Output: n draws spread over the populations of generations 0, τ, 2τ, … (τ =
       ``sample_every``), uniform within a generation, only among members with Sim ≥ δ that
       differ from the question; duplicated at random if fewer than n distinct exist.

    Every ``embed`` call is batched (a whole population at once) and each distinct string is
    embedded once. Seeded with ``numpy.random.default_rng(seed)``.
    """
    if not question or not question.strip():
        raise ConfidantError("the question is empty")
    if n < 1:
        raise ConfidantError(f"n must be at least 1, got {n}")
    if not 0.0 < key_ratio <= 1.0:
        raise ConfidantError(f"key_ratio must be in (0, 1], got {key_ratio}")
    if max_generations < 0 or population_size < 2 or sample_every < 1 or max_substitutes < 1:
        raise ConfidantError(
            "max_generations must be ≥ 0, population_size ≥ 2, sample_every ≥ 1 and "
            "max_substitutes ≥ 1"
        )
    if not np.isfinite(delta):
        raise ConfidantError("delta must be a finite number")
    _similarity_from_cosine(np.zeros(1), similarity_rule)  # validates the rule name

    rng = np.random.default_rng(seed)
    cache = _EmbeddingCache(embed)
    original_tokens = _tokenise(question)
    original = _render(original_tokens)
    word_count = sum(1 for word, _ in original_tokens if _WORD.fullmatch(word))
    n_keys = max(1, int(key_ratio * word_count))
    key_words = [w for w, _ in extract_key_words(original, embed, n_keys, _cache=cache)]
    if not key_words:
        raise ConfidantError("the question has no content word that GAAP could perturb")

    source_name, substitute_fn = _choose_source(
        source, substitutes, llm_substitutes, vocabulary, original, cache, wordnet_directory
    )
    substitution_sets: dict[str, list[str]] = {}
    for key in key_words:
        candidates = [str(s).replace("_", " ").strip() for s in substitute_fn(key) or []]
        candidates = [c for c in dict.fromkeys(candidates) if c and c.lower() != key.lower()]
        if len(candidates) > max_substitutes:
            vectors = cache([key] + candidates)
            order = np.argsort(-(vectors[1:] @ vectors[0]), kind="stable")[:max_substitutes]
            candidates = [candidates[i] for i in sorted(order)]
        substitution_sets[key] = candidates
    # Every word that can stand in a key word's place, mapped to that key word.
    lineage = {key.lower(): key for key in key_words}
    for key, candidates in substitution_sets.items():
        for candidate in candidates:
            lineage.setdefault(candidate.lower(), key)

    def replacements(token: str) -> list[str]:
        key = lineage[token.lower()]
        options = [key] + substitution_sets[key] + [""]
        return [_match_case(o, token) for o in options if o.lower() != token.lower()]

    def replace(individual: Individual, position: int, text: str) -> Individual:
        if text == "":
            return individual[:position] + individual[position + 1 :]
        return (
            individual[:position] + ((text, individual[position][1]),) + individual[position + 1 :]
        )

    def similarity(population: list[Individual]) -> np.ndarray:
        vectors = cache([original] + [_render(x) for x in population])
        return _similarity_from_cosine(
            np.clip(vectors[1:] @ vectors[0], -1.0, 1.0), similarity_rule
        )

    population = list(
        dict.fromkeys(
            replace(original_tokens, position, option)
            for position, (word, _) in enumerate(original_tokens)
            if word.lower() in {k.lower() for k in key_words}
            for option in replacements(word)
        )
    )
    population = [x for x in population if x]
    if not population:
        raise ConfidantError("the question is too short for GAAP to perturb")
    fitness = similarity(population)
    history: list[tuple[list[Individual], np.ndarray]] = [(population, fitness)]
    stop_reason = "max_generations"
    for _ in range(max_generations):
        if fitness.max() < delta:
            stop_reason = "best_similarity_below_delta"
            break
        parents = _roulette(rng, population, fitness, population_size)
        order = rng.permutation(len(parents))
        children: list[Individual] = []
        for a, b in zip(order[0::2], order[1::2], strict=False):
            children.extend(_crossover(rng, parents[a], parents[b]))
        mutants = []
        for child in children:
            mutable = [i for i, (word, _) in enumerate(child) if word.lower() in lineage]
            if mutable:
                position = int(rng.choice(mutable))
                options = replacements(child[position][0])
                mutants.append(replace(child, position, options[int(rng.integers(len(options)))]))
        population = [x for x in dict.fromkeys(parents + children + mutants) if x]
        fitness = similarity(population)
        history.append((population, fitness))
    else:
        if fitness.max() < delta:
            stop_reason = "best_similarity_below_delta"

    # Output: spread the n draws over generations 0, τ, 2τ, …; uniform within each.
    pools: list[tuple[int, list[tuple[str, float]]]] = []
    for generation in range(0, len(history), sample_every):
        members, scores = history[generation]
        eligible = {}
        for individual, score in zip(members, scores, strict=True):
            text = _render(individual)
            if score >= delta and text != original:
                eligible.setdefault(text, float(score))
        pools.append((generation, list(eligible.items())))
    chosen: dict[str, tuple[float, int]] = {}
    while len(chosen) < n:
        progressed = False
        for generation, pool in pools:
            remaining = [(t, s) for t, s in pool if t not in chosen]
            if remaining and len(chosen) < n:
                text, score = remaining[int(rng.integers(len(remaining)))]
                chosen[text] = (score, generation)
                progressed = True
        if not progressed:
            break
    if not chosen:
        raise ConfidantError(
            f"GAAP found no perturbation with similarity ≥ δ = {delta}; lower δ or give "
            "other substitutes"
        )
    texts = force_count(list(chosen), n, rng)
    return GaapResult(
        original=original,
        perturbations=texts,
        similarities=[chosen[t][0] for t in texts],
        generations=[chosen[t][1] for t in texts],
        key_words=key_words,
        substitution_sets=substitution_sets,
        substitution_source=source_name,
        n_generations=len(history) - 1,
        best_similarity_per_generation=[float(f.max()) for _, f in history],
        population_sizes=[len(p) for p, _ in history],
        stop_reason=stop_reason,
        n_distinct=len(chosen),
        seed=seed,
        delta=delta,
        similarity_rule=similarity_rule,
        parameters={
            "max_generations": max_generations,
            "population_size": population_size,
            "sample_every": sample_every,
            "key_ratio": key_ratio,
            "max_substitutes": max_substitutes,
            "source": source,
        },
    )
