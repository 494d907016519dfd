"""The closed "Prompt sent to the model" accordion every tab shows, and what it holds.

A result records the exact text its model was sent (``prompt_sent``: the chat template
applied; for an OpenAI-compatible chat server the chat messages as JSON). The accordion shows it
in a read-only ``gr.Code`` with no language, so nothing in a question or an answer is ever
rendered as markup; a note in the project's own words says what the tab adds to the question.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

PROMPT_TITLE = "Prompt sent to the model"
EXACT_LABEL = "Exact text sent, chat template included"
CHAT_JSON_LABEL = (
    "Chat messages sent to the server, as JSON (the server applies its own chat template)"
)
NOT_RECORDED = "No prompt recorded: this run was stored before prompts were kept."
NONE_STORED = (
    "No prompt stored with this run (answers supplied without a model, a run of many "
    "prompts, or one stored before prompts were kept)"
)
# How the first of several prompts is introduced ({n}: how many, {others}: how many more).
INPUTS_NOTE = (
    "Prompt 1 of {n}, for the original question; each of the other {others} inputs is sent "
    "the same way with its own question"
)
ORDERS_NOTE = "Prompt 1 of {n}, with x as A; the other presents the two responses swapped"


def prompt_code(label: str = EXACT_LABEL) -> gr.Code:
    """An empty read-only code box (no language: plain text) for one prompt."""
    return gr.Code(
        value="",
        language=None,
        interactive=False,
        label=label,
        lines=4,
        max_lines=30,
        wrap_lines=True,
        show_line_numbers=False,
        buttons=["copy"],
    )


def prompt_accordion(note: str) -> gr.Code:
    """A closed accordion with ``note`` (project text, Markdown) over an empty read-only code
    box; returns the box, the output for :func:`prompt_update`."""
    with gr.Accordion(PROMPT_TITLE, open=False):
        gr.Markdown(note)
        return prompt_code()


def _is_chat_json(text: str) -> bool:
    if not text.lstrip().startswith("["):
        return False
    try:
        messages = json.loads(text)
    except ValueError:
        return False
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages)
    )


def prompt_label(
    sent: str | list[str] | None, *, missing: str = NOT_RECORDED, several: str = INPUTS_NOTE
) -> str:
    """The code box's label for a recorded prompt: one, or the first of several (introduced
    by ``several``)."""
    if sent is None or sent == []:
        return missing
    first = sent[0] if isinstance(sent, list) else sent
    kind = CHAT_JSON_LABEL if _is_chat_json(first) else EXACT_LABEL
    if isinstance(sent, list) and len(sent) > 1:
        return f"{several.format(n=len(sent), others=len(sent) - 1)} · {kind}"
    return kind


def prompt_value(sent: str | list[str] | None) -> str:
    """The text the code box shows: the prompt, or the first of several."""
    if sent is None or sent == []:
        return ""
    return str(sent[0] if isinstance(sent, list) else sent)


def prompt_update(
    sent: str | list[str] | None,
    *,
    missing: str = NOT_RECORDED,
    several: str = INPUTS_NOTE,
    name: str = "",
) -> dict:
    """The ``gr.update`` that puts a recorded prompt in the box made by
    :func:`prompt_accordion`; ``name`` (e.g. "Posterior prompt") starts the label of a box
    that holds a prompt."""
    label = prompt_label(sent, missing=missing, several=several)
    if name and prompt_value(sent):
        label = f"{name} · {label}"
    return gr.update(value=prompt_value(sent), label=label)


def stored_prompt_update(result: dict[str, Any] | None) -> dict:
    """:func:`prompt_update` for a stored result (History)."""
    judged = (result or {}).get("judge") if isinstance(result, dict) else None
    pairwise = isinstance(judged, dict) and judged.get("type") == "pairwise"
    several = ORDERS_NOTE if pairwise else INPUTS_NOTE
    return prompt_update(stored_prompt(result), missing=NONE_STORED, several=several)


def stored_prompt(result: dict[str, Any] | None) -> str | list[str] | None:
    """The prompt a stored result records: its own ``prompt_sent``, that of the judge's
    grading (one prompt) or pairwise comparison (both presentation orders), or a 20 Questions
    game's last posterior prompt; None when none was recorded."""
    if not isinstance(result, dict):
        return None
    if result.get("prompt_sent") is not None:
        return result["prompt_sent"]
    turns = result.get("turns")
    if isinstance(turns, list):
        sent = [t.get("prompt_sent") for t in turns if isinstance(t, dict)]
        return next((s for s in reversed(sent) if s is not None), None)
    judged = result.get("judge")
    if isinstance(judged, dict):
        if judged.get("type") == "pairwise":
            sent = [(judged.get(k) or {}).get("prompt_sent") for k in ("first", "second")]
            return [s for s in sent if s is not None] or None
        return judged.get("prompt_sent")
    return None
