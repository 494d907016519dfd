"""The Judge tab's handlers (:class:`JudgeHandlers`) and its History view
(:func:`render_judge_run`); the page itself is laid out in :mod:`ui.tabs.judge`.

Annotate items beside the LLM judge, measure agreement, export, and run the TrustJudge
consistency diagnostics. Checking a person's answer and building the stored row is
:func:`judge.annotation.annotation_record`; saving it with its run is
:func:`store.judgements.save_annotation`.

Blind mode: the judge runs when an item is shown, but its result stays in server-side state
(``gr.State`` is never sent to the browser) and nothing of it is returned until the person's own
judgement is saved.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from core.errors import ConfidantError
from core.text import md_text
from judge.annotation import agreement_report, annotation_record, stored_rationale
from judge.config import JudgeConfig
from judge.grading import grade
from judge.items import KINDS, MAX_FILE_BYTES, demo_items, load_questions, parse_items
from judge.pairwise import compare
from judge.pipeline import ConsistencyConfig, ConsistencyResult, consistency_table, run_consistency
from store.judgements import (
    answer_in_words,
    export_judgements,
    judgement_by_key,
    list_judgements,
    save_annotation,
)
from store.runs import now_iso, save_run
from ui.components.cache import BoundedCache, CachedSequence
from ui.components.exports import offer
from ui.components.reveals import RevealLog
from ui.context import AppContext, annotator_of, owner_scope, session_of, user_errors
from ui.plots.judge import (
    agreement_markdown,
    agreement_rows,
    consistency_figure,
    consistency_markdown,
    consistency_rows,
    judge_figure,
    judge_markdown,
)

HIDDEN = "*The judge is hidden until you save your own judgement (blind mode).*"
_CACHE_SIZE = 256
MAX_IMPORTS = 32  # imported item files kept in memory, for all sessions together
KEPT_FOR_S = 4 * 3600  # an import or a judge result unused this long is forgotten
EXPIRED = "The imported items were not used for a while and were dropped; load them again."


def save_token(item_id: str) -> str:
    """A fresh token for one showing of an item: a random part (a retried save with the same
    token is stored once) and the item id (what the page shows)."""
    return f"{uuid.uuid4().hex}:{str(item_id)[:60]}"


def token_item(token: Any) -> str:
    """The item id a save token names ("" when it names none)."""
    return str(token or "").partition(":")[2]


def _who(ctx: AppContext, request: gr.Request | None, name: str | None) -> str:
    """The annotator: the logged-in user when login is on (a typed name is ignored), else the
    typed name."""
    if ctx.auth_enabled:
        user = getattr(request, "username", None) if request is not None else None
        if not user:
            raise ConfidantError("Log in to annotate: with login on, judgements are yours only.")
        return str(user)
    who = annotator_of(request, name)
    if not who:
        raise ConfidantError("Type your name first, so your judgements are kept apart.")
    if "\x00" in who:
        raise ConfidantError("The name contains a NUL character.")
    return who


def _item_at(items: Sequence[dict] | None, index: Any) -> tuple[int, dict]:
    if not items:
        if getattr(items, "expired", False):
            raise ConfidantError(EXPIRED)
        raise ConfidantError("Load items first (the demo set or a file).")
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise ConfidantError(f"The item number must be a whole number, got {index!r}.") from None
    if not 1 <= i <= len(items):
        raise ConfidantError(f"The item number must be between 1 and {len(items)}, got {i}.")
    return i, items[i - 1]


def _judge_config(scale: Any, direct: Any, max_new_tokens: Any) -> JudgeConfig:
    try:
        return JudgeConfig(
            scale=int(scale), direct=bool(direct), max_new_tokens=int(max_new_tokens)
        ).validate()
    except (TypeError, ValueError):
        raise ConfidantError("The scale and max new tokens must be whole numbers.") from None


def render_judge_run(run: dict) -> dict:
    """History view of a stored run of kind "judge" (an item judged, or a consistency run)."""
    result = run["result"]
    if result.get("type") == "consistency":
        res = ConsistencyResult.from_dict(result)
        table = [r.to_dict() for r in res.table]
        return {
            "markdown": consistency_markdown(res),
            "plot": consistency_figure(table, res.config.ks),
        }
    item = result.get("item") or {}
    judged = result.get("judge") or {}
    text = functools.partial(md_text, inline=False, empty="∅")
    head = f"**Question:** {text(item.get('question'))}\n\n"
    if judged.get("type") == "pairwise":
        head += (
            f"**A:** {text(item.get('response_a'))}\n\n**B:** {text(item.get('response_b'))}\n\n"
        )
    else:
        head += f"**Response:** {text(item.get('response'))}\n\n"
    human = result.get("human") or {}
    who = md_text(human.get("annotator"), empty="?")
    head += f"**Human ({who}):** {md_text(human.get('answer'), empty='—')}\n\n"
    return {"markdown": head + judge_markdown(judged), "plot": judge_figure(judged)}


class JudgeHandlers:
    """The tab's event handlers, callable directly (tests) or from Gradio."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._cache = BoundedCache(_CACHE_SIZE, KEPT_FOR_S)  # key -> the judge's result
        self._views = BoundedCache(_CACHE_SIZE, KEPT_FOR_S)  # key -> (figure, markdown)
        # An imported file's items, shared by the sessions that import it; a session's State
        # holds a handle (CachedSequence), so 40 sessions do not keep 40 copies.
        self._imports = BoundedCache(MAX_IMPORTS, KEPT_FOR_S)
        # Which viewer saw the judge's numbers for which item: blind is decided here.
        self._revealed = RevealLog()

    # -- items -------------------------------------------------------------------------------

    @user_errors
    def load_items(self, source: str, upload: Any, kind: str):
        """(items, status markdown, first item number)."""
        if kind not in KINDS:
            raise ConfidantError(f"Choose single or pairwise items, not {kind!r}.")
        if source == "Demo set":
            items = demo_items(kind)
            origin = "the bundled demo set"
        else:
            path = upload if isinstance(upload, (str, Path)) else getattr(upload, "name", None)
            if not path:
                raise ConfidantError("Choose a CSV or JSONL file to import first.")
            with open(path, "rb") as f:  # one byte past the limit tells a file too large
                data = f.read(MAX_FILE_BYTES + 1)
            key = (hashlib.sha256(data).hexdigest(), kind)
            if key not in self._imports:
                self._imports.put(key, parse_items(data, Path(path).name, kind))
            items = CachedSequence(self._imports, key)
            origin = md_text(Path(path).name)
        return items, f"Loaded {len(items)} {kind} item(s) from {origin}.", 1

    # -- one item ----------------------------------------------------------------------------

    def _run_judge(self, item: dict, config: JudgeConfig) -> tuple[str, dict]:
        """(cache key, judge result) for ``item``: the judge runs once per item and settings."""
        lm = self.ctx.backends.generator()
        content = json.dumps(
            [lm.model_id, config.to_dict(), item["kind"], item["question"]]
            + [item.get(k) for k in ("response", "response_a", "response_b")],
            sort_keys=True,
        )
        key = hashlib.sha256(content.encode()).hexdigest()
        found = self._cache.get(key)
        if found is not None:
            return key, found
        if item["kind"] == "pairwise":
            result = compare(
                lm, item["question"], item["response_a"], item["response_b"], config
            ).to_dict()
        else:
            result = grade(lm, item["question"], item["response"], config).to_dict()
        self._cache.put(key, result)
        return key, result

    def _view(self, key: str | None, result: dict) -> tuple[Any, str]:
        """The judge's figure and Markdown for a judged item, built once per item: plotly takes
        a good part of a second per figure on a busy CPU, and every annotator's submit shows it.
        The cached figure is never mutated, so concurrent requests share it."""
        found = self._views.get(key) if key is not None else None
        if found is not None:
            return found
        view = (judge_figure(result), judge_markdown(result))
        if key is not None:
            self._views.put(key, view)
        return view

    @user_errors
    def show_item(
        self, items, index, scale, direct, max_new_tokens, blind, request: gr.Request = None
    ):
        """Show item ``index`` (1-based). Returns (position, question, response A, response B,
        score slider, preference radio, judge plot, judge markdown, judge state, client key,
        shown timestamp). In blind mode the plot and markdown carry nothing of the judge."""
        i, item = _item_at(items, index)
        config = _judge_config(scale, direct, max_new_tokens)
        shown = now_iso()
        key, result = self._run_judge(item, config)
        # The save token goes to the page with the item and comes back with the save: it names
        # the item on screen, and the server refuses a save whose token is not the loaded one.
        token = save_token(item["item_id"])
        state = {
            "item_id": item["item_id"],
            "index": i,
            "result": result,
            "blind": bool(blind),
            "key": key,
            "token": token,
        }
        pairwise = item["kind"] == "pairwise"
        position = (
            f"Item **{i} of {len(items)}** · {md_text(item['item_id'])} · {md_text(item['kind'])}"
        )
        if blind:
            plot, md = None, HIDDEN
        else:
            plot, md = self._view(key, result)
            self._revealed.add(request, item["item_id"])
        return (
            position,
            item["question"],
            item["response_a"] if pairwise else item["response"],
            gr.update(value=item["response_b"] if pairwise else "", visible=pairwise),
            # No preset score: nothing is stored until the annotator picks one.
            gr.update(choices=list(range(1, config.scale + 1)), value=None, visible=not pairwise),
            gr.update(value=None, visible=pairwise),
            plot,
            md,
            state,
            token,
            shown,
        )

    @user_errors
    def submit(
        self,
        items,
        judge_state,
        client_key,
        shown,
        human_score,
        preference,
        note,
        name,
        request: gr.Request = None,
    ):
        """Save the person's judgement with the judge's; returns (status, judge plot, judge
        markdown). A retried submit with the same client key stores nothing new."""
        who = _who(self.ctx, request, name)
        if not judge_state or not items:
            raise ConfidantError("Show an item first.")
        i, item = _item_at(items, judge_state.get("index"))
        if item["item_id"] != judge_state.get("item_id"):
            raise ConfidantError("The items changed since this one was shown; show it again.")
        if judge_state.get("token") and client_key != judge_state["token"]:
            raise ConfidantError(
                f"Not saved: the item on screen ({token_item(client_key)!r}) is not the item "
                f"loaded for saving ({item['item_id']!r}). Wait until the item has loaded, "
                "then save again."
            )
        result = judge_state["result"]
        record = annotation_record(
            item,
            result,
            annotator=who,
            client_key=client_key,
            human_score=human_score,
            preference=preference,
            note=note,
            # Blind only if this viewer never had the judge's numbers for the item: a page
            # cannot claim blind after seeing them (the client's flag is not trusted).
            blind=bool(judge_state.get("blind"))
            and not self._revealed.seen(request, item["item_id"]),
            shown=shown,
            session_id=session_of(request),
        )
        # One transaction: the run and the judgement land together, and a retried submission
        # arriving while the first is being saved finds it instead of storing a second run.
        judgement_id = save_annotation(self.ctx.store, record.row, record.run)
        stored = judgement_by_key(self.ctx.store, record.row["client_key"]) or {}
        # The acknowledgement reports what the database holds, read back.
        self._revealed.add(request, item["item_id"])  # the saved answer shows the judge's numbers
        status = (
            f"Saved judgement #{judgement_id} by **{md_text(who)}** on item {i} "
            f"({answer_in_words(stored) if stored else record.answer})."
        )
        return (status, *self._view(judge_state.get("key"), result))

    # -- agreement and export ----------------------------------------------------------------

    @user_errors
    def agreement(self, request: gr.Request = None):
        """Agreement per group of items: across annotators and with the judge. With login on,
        only admins see the agreement across annotators; anyone else sees their own
        judgements' agreement with the judge."""
        owner = owner_scope(self.ctx, request)
        rows = list_judgements(self.ctx.store, annotator=owner)
        if not rows:
            raise ConfidantError("No judgements saved yet" + (" by you." if owner else "."))
        report = agreement_report(rows)
        note = "" if owner is None else "Your judgements only (admins see everyone's).\n"
        return agreement_rows(report), note + agreement_markdown(report)

    @user_errors
    def export(self, fmt: str, name: str | None, request: gr.Request = None):
        fmt = "jsonl" if str(fmt).lower() == "jsonl" else "csv"
        if self.ctx.auth_enabled:
            who = _who(self.ctx, request, name)
        else:
            who = annotator_of(request, name)  # a typed name exports that annotator only
        rows = list_judgements(self.ctx.store, annotator=who)
        if not rows:
            raise ConfidantError("No judgements to export" + (f" for {who}." if who else " yet."))
        path = export_judgements(
            self.ctx.store, annotator=who, fmt=fmt, rationale_of=stored_rationale
        )
        return offer(path, annotator_of(request))

    # -- consistency ---------------------------------------------------------------------------

    @user_errors
    def consistency(
        self,
        n_questions,
        direct,
        max_new_tokens,
        baseline_scale,
        trustjudge_scale,
        tolerance,
        request: gr.Request = None,
    ):
        """Run §3 on the first ``n_questions`` demo questions, streaming (status, table rows,
        plot) after each question; the run is saved at the end."""
        try:
            n = int(n_questions)
            config = ConsistencyConfig(
                judge=_judge_config(5, direct, max_new_tokens),
                baseline_scale=int(baseline_scale),
                trustjudge_scale=int(trustjudge_scale),
                tolerance=float(tolerance),
            ).validate()
        except (TypeError, ValueError):
            raise ConfidantError("The consistency settings must be numbers.") from None
        questions = load_questions()
        if not 1 <= n <= len(questions):
            raise ConfidantError(f"Choose between 1 and {len(questions)} questions, got {n}.")
        questions = questions[:n]
        lm = self.ctx.backends.generator()
        started = time.perf_counter()
        runs = []
        yield f"Judging question 1 of {n}…", [], None
        for k, q in enumerate(questions, start=1):
            runs.extend(run_consistency(lm, [q], config).questions)
            table = [r.to_dict() for r in consistency_table(runs, config)]
            status = f"Judged {k} of {n} question(s)" + ("…" if k < n else ".")
            yield status, consistency_rows(table, config.ks), consistency_figure(table, config.ks)
        result = ConsistencyResult(
            model=lm.model_id, config=config, questions=runs, table=consistency_table(runs, config)
        )
        run_id = save_run(
            self.ctx.store,
            kind="judge",
            model=lm.model_id,
            params=config.to_dict(),
            seed=config.judge.seed,
            result=result.to_dict(),
            title=f"Consistency run on {n} demo question(s)",
            annotator=annotator_of(request),
            session_id=session_of(request),
            duration=time.perf_counter() - started,
        )
        table = [r.to_dict() for r in result.table]
        yield (
            f"Done: {n} question(s). Saved as run `{run_id}` (History tab, kind judge).",
            consistency_rows(table, config.ks),
            consistency_figure(table, config.ks),
        )
