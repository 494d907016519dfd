"""A reader of the WordNet database files (Debian's ``wordnet-base``) for GAAP's synonym
substitutions, with morphological base forms.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from core.errors import ConfidantError
from uq.inv.substitutes import Substitutes

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
