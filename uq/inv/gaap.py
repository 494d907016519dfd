"""GAAP (Genetic Algorithm-based Adversarial Perturbation) for Inv-Entropy.

Song, Ji, Shi, Lai, Al Kontar (2025), "Inv-Entropy", arXiv 2506.09684, §2.6 and Appendix C; the
authors describe GAAP but never released it. Key words are chosen KeyBERT-style with the
embedding function; each key word gets a substitution set (WordNet synonyms, hypernyms and
hyponyms when a WordNet database is available — :mod:`uq.inv.wordnet` —, otherwise the embedding
model's nearest words in a vocabulary — :mod:`uq.inv.substitutes` —, or an LLM's suggestions),
plus deletion. Roulette-wheel selection by similarity to the original, single-point crossover and
one-token mutation evolve the population; the output is sampled across generations and every
returned perturbation has similarity ≥ δ to the original. The number of perturbations is the same
for every question (default 9), so that the distributions of different questions live on the
same scale. Paraphrases by the model are :mod:`uq.inv.paraphrase`.

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

import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from core.errors import ConfidantError
from uq.inv.paraphrase import DEFAULT_N_PERTURBATIONS, force_count
from uq.inv.substitutes import (
    WORD,
    Embed,
    EmbeddingCache,
    Substitutes,
    embedding_substitutes,
    extract_key_words,
    similarity_from_cosine,
)
from uq.inv.wordnet import wordnet_substitutes

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
        if not space and WORD.match(word[-1:]) and WORD.match(following[:1]):
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
    cache: EmbeddingCache,
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
    words = WORD.findall(question) + list(vocabulary)
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
    similarity_from_cosine(np.zeros(1), similarity_rule)  # validates the rule name

    rng = np.random.default_rng(seed)
    cache = EmbeddingCache(embed)
    original_tokens = _tokenise(question)
    original = _render(original_tokens)
    word_count = sum(1 for word, _ in original_tokens if WORD.fullmatch(word))
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
        return similarity_from_cosine(np.clip(vectors[1:] @ vectors[0], -1.0, 1.0), similarity_rule)

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
