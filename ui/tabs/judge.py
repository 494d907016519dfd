"""The Judge tab: annotate items beside the LLM judge, measure agreement, export, and run the
TrustJudge consistency diagnostics.

Blind mode: the judge runs when an item is shown, but its result stays in server-side state
(``gr.State`` is never sent to the browser) and nothing of it is returned until the person's own
judgement is saved.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gradio as gr

from core.errors import ConfidantError
from judge.annotation import agreement_report
from judge.config import JudgeConfig
from judge.grading import GradeResult, grade
from judge.items import KINDS, demo_items, load_questions, parse_items
from judge.pairwise import PairwiseResult, compare
from judge.pipeline import ConsistencyConfig, ConsistencyResult, consistency_table, run_consistency
from store.judgements import export_judgements, judgement_by_key, list_judgements, save_judgement
from store.runs import now_iso, save_run
from ui.context import AppContext, annotator_of, session_of, user_errors
from ui.plots.judge import (
    AGREEMENT_HEADERS,
    CONSISTENCY_HEADERS,
    agreement_rows,
    consistency_figure,
    consistency_rows,
    score_distribution_figure,
    verdict_figure,
)

MAX_NOTE_CHARS = 5_000
HIDDEN = "*The judge is hidden until you save your own judgement (blind mode).*"
_CACHE_SIZE = 256


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


def _item_at(items: list[dict] | None, index: Any) -> tuple[int, dict]:
    if not items:
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


def judge_markdown(result: dict) -> str:
    """The judge's numbers for one item (grade or pairwise result dict) as Markdown."""
    if result.get("type") == "pairwise":
        pr = PairwiseResult.from_dict(result)
        view = pr.judge_view()
        first, second = view["first_order"], view["second_order_swapped"]
        lines = [
            "| | first better (A) | second better (B) | tie (C) | emitted | perplexity |",
            "|---|---|---|---|---|---|",
        ]
        for label, probs, read in (
            ("order 1", first, pr.first),
            ("order 2 (swapped back)", second, pr.second),
        ):
            ppl = f"{read.perplexity:.3g}" if read.perplexity is not None else "—"
            lines.append(
                f"| {label} | {probs['A']:.3f} | {probs['B']:.3f} | {probs['C']:.3f} | "
                f"{read.emitted or '—'} | {ppl} |"
            )
        names = {1: "first better", 0: "tie", -1: "second better", None: "—"}
        rel = " · ".join(f"{rule}: **{names[r]}**" for rule, r in pr.relations.items())
        trunc = " (top-k only)" if pr.first.truncated else ""
        return (
            "\n".join(lines)
            + f"\n\nRelations{trunc}: {rel}\n\n"
            + _rationales([pr.first.judgement, pr.second.judgement])
        )
    gr_ = GradeResult.from_dict(result)
    if gr_.summary is None:
        return "The judge's reply could not be scored: " + "; ".join(gr_.notes)
    s = gr_.summary
    trunc = " (top-k log-probabilities only: a lower bound on the mass)" if gr_.truncated else ""
    return (
        f"| emitted | argmax | G-Eval | expectation | TrustJudge (T={s.temperature:g}) | "
        f"entropy (nats) | mass on scale |\n|---|---|---|---|---|---|---|\n"
        f"| {s.first} | {s.argmax} | {s.geval:.3f} | {s.expectation:.3f} | {s.trustjudge:.3f} | "
        f"{s.entropy:.3f} | {s.mass:.3g}{trunc} |\n\n" + _rationales([gr_.judgement])
    )


def _rationales(texts: list[str]) -> str:
    shown = [t.strip() for t in texts if t and t.strip()]
    if not shown:
        return ""
    quoted = "\n\n".join("> " + t[:2000].replace("\n", "\n> ") for t in shown)
    return "**Judge's rationale**\n\n" + quoted


def judge_figure(result: dict):
    if result.get("type") == "pairwise":
        return verdict_figure(PairwiseResult.from_dict(result).judge_view())
    g = GradeResult.from_dict(result)
    return score_distribution_figure(g.distribution, g.scores(), f"Judge · 1..{g.scale}")


def render_judge_run(run: dict) -> dict:
    """History view of a stored run of kind "judge" (an item judged, or a consistency run)."""
    result = run["result"]
    if result.get("type") == "consistency":
        res = ConsistencyResult.from_dict(result)
        table = [r.to_dict() for r in res.table]
        return {
            "markdown": _consistency_markdown(res),
            "plot": consistency_figure(table, res.config.ks),
        }
    item = result.get("item") or {}
    judged = result.get("judge") or {}
    head = f"**Question:** {item.get('question', '')}\n\n"
    if judged.get("type") == "pairwise":
        head += f"**A:** {item.get('response_a', '')}\n\n**B:** {item.get('response_b', '')}\n\n"
    else:
        head += f"**Response:** {item.get('response', '')}\n\n"
    human = result.get("human") or {}
    head += f"**Human ({human.get('annotator', '?')}):** {human.get('answer', '—')}\n\n"
    return {"markdown": head + judge_markdown(judged), "plot": judge_figure(judged)}


def _consistency_markdown(res: ConsistencyResult) -> str:
    cfg = res.config
    header = "| " + " | ".join(CONSISTENCY_HEADERS) + " |\n|" + "---|" * len(CONSISTENCY_HEADERS)
    body = "\n".join(
        "| " + " | ".join(str(c) for c in row) + " |"
        for row in consistency_rows([r.to_dict() for r in res.table], cfg.ks)
    )
    return (
        f"**Consistency run** on {len(res.questions)} question(s) · model `{res.model}` · "
        f"baseline and G-Eval on 1..{cfg.baseline_scale}, TrustJudge on 1..{cfg.trustjudge_scale} "
        f"rescaled · δ = {cfg.tolerance:g} · {'direct' if cfg.judge.direct else 'rationale'} "
        f"mode\n\nCR compares single scores with the baseline two-pass verdicts; NTR_k counts "
        f"k-subsets of candidates with a cycle or a broken tie.\n\n{header}\n{body}"
    )


class JudgeHandlers:
    """The tab's event handlers, callable directly (tests) or from Gradio."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._cache: OrderedDict[str, dict] = OrderedDict()
        self._views: OrderedDict[str, tuple[Any, str]] = OrderedDict()
        self._cache_lock = threading.Lock()

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
            data = Path(path).read_bytes()
            items = parse_items(data, Path(path).name, kind)
            origin = f"`{Path(path).name}`"
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
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return key, self._cache[key]
        if item["kind"] == "pairwise":
            result = compare(
                lm, item["question"], item["response_a"], item["response_b"], config
            ).to_dict()
        else:
            result = grade(lm, item["question"], item["response"], config).to_dict()
        with self._cache_lock:
            self._cache[key] = result
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return key, result

    def _view(self, key: str | None, result: dict) -> tuple[Any, str]:
        """The judge's figure and Markdown for a judged item, built once per item: plotly takes
        a good part of a second per figure on a busy CPU, and every annotator's submit shows it.
        The cached figure is never mutated, so concurrent requests share it."""
        with self._cache_lock:
            if key is not None and key in self._views:
                self._views.move_to_end(key)
                return self._views[key]
        view = (judge_figure(result), judge_markdown(result))
        if key is not None:
            with self._cache_lock:
                self._views[key] = view
                while len(self._views) > _CACHE_SIZE:
                    self._views.popitem(last=False)
        return view

    @user_errors
    def show_item(self, items, index, scale, direct, max_new_tokens, blind):
        """Show item ``index`` (1-based). Returns (position, question, response A, response B,
        score slider, preference radio, judge plot, judge markdown, judge state, client key,
        shown timestamp). In blind mode the plot and markdown carry nothing of the judge."""
        i, item = _item_at(items, index)
        config = _judge_config(scale, direct, max_new_tokens)
        shown = now_iso()
        key, result = self._run_judge(item, config)
        state = {
            "item_id": item["item_id"],
            "index": i,
            "result": result,
            "blind": bool(blind),
            "key": key,
        }
        pairwise = item["kind"] == "pairwise"
        position = f"Item **{i} of {len(items)}** · `{item['item_id']}` · {item['kind']}"
        if blind:
            plot, md = None, HIDDEN
        else:
            plot, md = self._view(key, result)
        return (
            position,
            item["question"],
            item["response_a"] if pairwise else item["response"],
            gr.update(value=item["response_b"] if pairwise else "", visible=pairwise),
            gr.update(maximum=config.scale, value=None, visible=not pairwise),
            gr.update(value=None, visible=pairwise),
            plot,
            md,
            state,
            uuid.uuid4().hex,
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
        key = str(client_key or "").strip()
        if not key or len(key) > 100:
            raise ConfidantError("This submission has no valid key; show the item again.")
        note = "" if note is None else str(note)
        if "\x00" in note:
            raise ConfidantError("The note contains a NUL character.")
        if len(note) > MAX_NOTE_CHARS:
            raise ConfidantError(
                f"The note is {len(note):,} characters; the limit is {MAX_NOTE_CHARS:,}."
            )
        result = judge_state["result"]
        pairwise = item["kind"] == "pairwise"
        row: dict[str, Any] = {
            "client_key": key,
            "item_id": item["item_id"],
            "kind": item["kind"],
            "annotator": who,
            "session_id": session_of(request),
            "question": item["question"],
            "note": note.strip(),
            "judge_model": result["model"],
            "blind": int(bool(judge_state.get("blind"))),
            "shown": shown or None,
        }
        if pairwise:
            letter = str(preference or "").strip()[:1].upper()
            if letter not in ("A", "B", "C"):
                raise ConfidantError("Choose A, B or C (tie) before saving.")
            pr = PairwiseResult.from_dict(result)
            row.update(
                response=item["response_a"],
                response_b=item["response_b"],
                human_preference=letter,
                judge=pr.judge_view(),
                scores={"relations": pr.relations, "emitted": pr.judge_view()["emitted"]},
            )
            answer = {"A": "first better", "B": "second better", "C": "tie"}[letter]
        else:
            g = GradeResult.from_dict(result)
            try:
                value = float(human_score)
            except (TypeError, ValueError):
                raise ConfidantError("Give your score before saving.") from None
            if not (value == value and value not in (float("inf"), float("-inf"))):
                raise ConfidantError("Your score must be a finite number.")
            if not value.is_integer() or not 1 <= value <= g.scale:
                raise ConfidantError(f"Your score must be a whole number from 1 to {g.scale}.")
            row.update(
                response=item["response"],
                human_score=value,
                scale=g.scale,
                judge={
                    "distribution": {str(k): p for k, p in g.distribution.items()},
                    "raw": {str(k): p for k, p in g.raw.items()},
                    "source": g.source,
                    "truncated": g.truncated,
                },
                scores=g.scores(),
            )
            answer = f"{int(value)} / {g.scale}"

        def save(_db) -> int:
            existing = judgement_by_key(self.ctx.store, key)
            if existing is not None:
                if existing["annotator"] != who:
                    raise ConfidantError(
                        "This submission key belongs to another annotator; nothing was saved."
                    )
                return existing["id"]
            row["run_id"] = save_run(
                self.ctx.store,
                kind="judge",
                model=result["model"],
                params=result["config"],
                seed=result["config"].get("seed"),
                result={
                    "type": "annotation",
                    "item": item,
                    "judge": result,
                    "human": {"annotator": who, "answer": answer, "note": row["note"]},
                },
                title=item["question"][:200],
                annotator=who,
                session_id=session_of(request),
            )
            return save_judgement(self.ctx.store, row)

        # One transaction under the store's lock: the run and the judgement land together, and a
        # retried submission arriving while the first is being saved finds it instead of storing
        # a second run beside it.
        judgement_id = self.ctx.store.write(save)
        status = f"Saved judgement #{judgement_id} by **{who}** on item {i} ({answer})."
        return (status, *self._view(judge_state.get("key"), result))

    # -- agreement and export ----------------------------------------------------------------

    @user_errors
    def agreement(self):
        rows = list_judgements(self.ctx.store)
        if not rows:
            raise ConfidantError("No judgements saved yet.")
        report = agreement_report(rows)
        lines = []
        for g in report["groups"]:
            people = ", ".join(g["annotators"]) or "none"
            a_people = "—" if g["alpha_people"] is None else f"{g['alpha_people']:.3f}"
            a_judge = "—" if g["alpha_with_judge"] is None else f"{g['alpha_with_judge']:.3f}"
            lines.append(
                f"- **{g['name']}**: {g['items']} item(s), annotators {people}; Krippendorff's α "
                f"people {a_people}, people + {g['alpha_judge'] or 'judge'} {a_judge}"
            )
        return agreement_rows(report), "\n".join(lines)

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
        return str(export_judgements(self.ctx.store, annotator=who, fmt=fmt))

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


def create_judge_tab(ctx: AppContext) -> None:
    h = JudgeHandlers(ctx)
    ctx.history_renderers["judge"] = render_judge_run
    with gr.Tab("Judge", id="judge"):
        gr.Markdown(
            "Judge answers beside the LLM judge. For each item the judge writes a short rationale, "
            "then Confidant reads its **exact probability for every score** (or for A / B / C "
            "in both presentation orders) by teacher forcing. With **blind mode** the judge "
            "stays hidden until you save your own judgement."
        )
        with gr.Row():
            name = gr.Textbox(
                label="Your name",
                placeholder="e.g. ada",
                visible=not ctx.auth_enabled,
                scale=2,
            )
            who_md = gr.Markdown(visible=ctx.auth_enabled)
            blind = gr.Checkbox(value=True, label="Blind mode (hide the judge until I answer)")
        with gr.Row():
            source = gr.Radio(["Demo set", "Import file"], value="Demo set", label="Items")
            kind = gr.Radio(list(KINDS), value="single", label="Task")
            upload = gr.File(
                label="CSV or JSONL (question, response | response_a, response_b)",
                file_types=[".csv", ".jsonl"],
                type="filepath",
            )
            load_btn = gr.Button("Load items", variant="primary", scale=0)
        load_md = gr.Markdown()
        with gr.Accordion("Judge settings", open=False):
            with gr.Row():
                scale = gr.Dropdown([5, 100], value=5, label="Scale (single items)")
                direct = gr.Checkbox(value=False, label="Direct score (no rationale)")
                max_new = gr.Slider(1, 1024, value=128, step=1, label="Rationale max new tokens")
        items = gr.State([])
        judge_state = gr.State(None)
        shown = gr.State("")
        with gr.Row():
            index = gr.Number(value=1, precision=0, label="Item number", scale=1)
            show_btn = gr.Button("Show item", scale=0)
            next_btn = gr.Button("Next item", scale=0)
        position = gr.Markdown()
        question = gr.Textbox(label="Question", interactive=False, lines=2)
        with gr.Row():
            response_a = gr.Textbox(label="Response (A)", interactive=False, lines=6)
            response_b = gr.Textbox(label="Response B", interactive=False, lines=6, visible=False)
        with gr.Row():
            human_score = gr.Slider(1, 5, step=1, value=None, label="Your score")
            preference = gr.Radio(
                ["A", "B", "C (tie)"], label="Which answer is better?", visible=False
            )
        note = gr.Textbox(label="Note (optional)", lines=2)
        client_key = gr.Textbox(visible=False)
        submit_btn = gr.Button("Save my judgement", variant="primary")
        status = gr.Markdown()
        judge_plot = gr.Plot(label="Judge")
        judge_md = gr.Markdown()

        with gr.Accordion("Agreement and export", open=False):
            agree_btn = gr.Button("Compute agreement")
            agree_table = gr.Dataframe(headers=AGREEMENT_HEADERS, interactive=False, wrap=True)
            agree_md = gr.Markdown()
            with gr.Row():
                fmt = gr.Radio(["CSV", "JSONL"], value="CSV", label="Format")
                export_btn = gr.Button("Export judgements")
            export_file = gr.File(label="Download", interactive=False)

        with gr.Accordion("Consistency (TrustJudge CR and NTR_k on the demo set)", open=False):
            gr.Markdown(
                "Grades every candidate of each demo question and compares every pair in both "
                "orders, then reports the **Conflict Ratio** (single scores vs pairwise verdicts) "
                "and **NTR_k** (k-subsets with a cycle or a broken tie) for the baseline, G-Eval "
                "and TrustJudge. Slow with a real model: start with 1–2 questions and direct mode."
            )
            with gr.Row():
                n_q = gr.Slider(1, 10, value=2, step=1, label="Questions")
                c_direct = gr.Checkbox(value=True, label="Direct (no rationale)")
                c_max_new = gr.Slider(1, 512, value=64, step=1, label="Max new tokens")
                c_base = gr.Dropdown([5, 100], value=5, label="Baseline / G-Eval scale")
                c_tj = gr.Dropdown([5, 100], value=100, label="TrustJudge scale")
                c_tol = gr.Number(value=0.0, label="Tolerance δ (baseline points)")
            c_btn = gr.Button("Run consistency", variant="primary")
            c_status = gr.Markdown()
            c_table = gr.Dataframe(headers=CONSISTENCY_HEADERS, interactive=False, wrap=True)
            c_plot = gr.Plot(label="CR and NTR_k")

        show_outputs = [
            position,
            question,
            response_a,
            response_b,
            human_score,
            preference,
            judge_plot,
            judge_md,
            judge_state,
            client_key,
            shown,
        ]
        show_inputs = [items, index, scale, direct, max_new, blind]
        load_btn.click(
            h.load_items, [source, upload, kind], [items, load_md, index], api_name="judge_load"
        )
        show_btn.click(
            h.show_item,
            show_inputs,
            show_outputs,
            api_name="judge_show",
            concurrency_id="model",
            concurrency_limit=1,
        )

        def bump(i, its):
            return min(int(i or 0) + 1, max(1, len(its or [])))

        next_btn.click(bump, [index, items], [index], api_visibility="private").then(
            h.show_item,
            show_inputs,
            show_outputs,
            api_visibility="private",
            concurrency_id="model",
            concurrency_limit=1,
        )
        submit_btn.click(
            h.submit,
            [items, judge_state, client_key, shown, human_score, preference, note, name],
            [status, judge_plot, judge_md],
            api_name="judge_submit",
        )
        agree_btn.click(h.agreement, None, [agree_table, agree_md], api_name="judge_agreement")
        export_btn.click(h.export, [fmt, name], [export_file], api_name="judge_export")
        c_btn.click(
            h.consistency,
            [n_q, c_direct, c_max_new, c_base, c_tj, c_tol],
            [c_status, c_table, c_plot],
            api_name="judge_consistency",
            concurrency_id="model",
            concurrency_limit=1,
        )
        if ctx.auth_enabled:

            def whoami(request: gr.Request):
                user = getattr(request, "username", None)
                return f"Annotating as **{user}**." if user else "Log in to annotate."

            ctx.on_load.append((whoami, None, [who_md]))
