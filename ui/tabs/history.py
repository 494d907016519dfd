"""The History tab: past runs, reopened from the database without a model, and exports."""

from __future__ import annotations

import gradio as gr

from core.errors import ConfidantError
from core.text import md_text
from judge.annotation import stored_rationale
from store.export import export_runs
from store.judgements import export_judgements
from store.runs import get_run, list_runs
from ui.components.exports import offer
from ui.components.prompt import prompt_accordion, stored_prompt_update
from ui.components.results import first_cell_of_selected_row, token_highlights
from ui.context import AppContext, annotator_of, owner_scope, user_errors

RUN_TABLE_COLUMNS = ["id", "kind", "title", "model", "created", "annotator"]


class HistoryHandlers:
    """The History tab's event handlers, callable directly (tests) or from Gradio. Each kind of
    run is shown by the ``render_<kind>(run) -> dict`` its own tab registers in
    ``ctx.history_renderers``."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @user_errors
    def list_runs(self, k, request: gr.Request = None):
        """The runs table, newest first, of one kind or of all (``"all"``); with login on,
        only the user's own runs (an admin's: everyone's)."""
        rows = list_runs(
            self.ctx.store,
            kind=None if k in (None, "", "all") else k,
            owner=owner_scope(self.ctx, request),
        )
        return [[r.get(c) or "" for c in RUN_TABLE_COLUMNS] for r in rows]

    def run_view(self, run_id: str, owner: str | None = None) -> dict:
        """The view of a stored run (markdown, plot, plot2, highlights, json), rebuilt from the
        database by the renderer of its kind; a ``ConfidantError`` for a missing id, or for a
        run that is not ``owner``'s (when given)."""
        run_id = (run_id or "").strip()
        if not run_id:
            raise ConfidantError("Pick a run from the table (or paste its id) first.")
        run = get_run(self.ctx.store, run_id, owner=owner)
        if run is None:
            raise ConfidantError(f"No run with id {run_id!r}.")
        renderer = self.ctx.history_renderers.get(run["kind"])
        kind = md_text(run["kind"])
        no_view = f"Runs of kind {kind} have no view; the stored result is below."
        view = renderer(run) if renderer else {"markdown": no_view}
        # Every stored field is text to show, never markup (a run may come from anyone).
        header = (
            f"### {kind} · {md_text(run['created'])}\nmodel {md_text(run['model'])} · "
            f"seed {md_text(run['seed'], empty='—')} · {(run['duration'] or 0):.2f} s\n\n"
        )
        view["markdown"] = header + view.get("markdown", "")
        view["json"] = {"params": run["params"], "result": run["result"]}
        return view

    @user_errors
    def open_run(self, rid, request: gr.Request = None):
        """(markdown, highlights, plot, second plot, stored JSON) of one run (with login on,
        one of the user's own)."""
        v = self.run_view(rid, owner=owner_scope(self.ctx, request))
        return (
            v.get("markdown", ""),
            _shown_if_any(v.get("highlights")),
            _shown_if_any(v.get("plot")),
            _shown_if_any(v.get("plot2")),
            v.get("json"),
        )

    @user_errors
    def open_prompt(self, rid, request: gr.Request = None):
        """The prompt the run stored (the "Prompt sent to the model" box), or an empty box
        whose label says none was stored (also for another annotator's run, with login on)."""
        rid = (rid or "").strip()
        run = get_run(self.ctx.store, rid, owner=owner_scope(self.ctx, request)) if rid else None
        return stored_prompt_update(run["result"] if run else None)

    @user_errors
    def export_runs(self, request: gr.Request = None) -> list[str]:
        """The runs as two CSV files (with login on: the user's own; an admin's: everyone's):
        wide, one row per run with its answers and one column per measure; and long, one row
        per answer."""
        owner = owner_scope(self.ctx, request)
        paths = export_runs(self.ctx.store, owner=owner, measures=self.ctx.run_measures)
        return [offer(p, annotator_of(request)) for p in paths]

    @user_errors
    def export_mine(self, name: str | None = None, request: gr.Request = None):
        """The logged-in annotator's judgements as CSV; without login, those of the name typed."""
        who = annotator_of(request, None if self.ctx.auth_enabled else name)
        if not who:  # never fall through to "everyone's" (annotator=None means all)
            raise ConfidantError(
                "Log in to export your judgements."
                if self.ctx.auth_enabled
                else "Type your annotator name first (the one you judged under), or use "
                "“Export all judgements”."
            )
        path = export_judgements(self.ctx.store, annotator=who, rationale_of=stored_rationale)
        return offer(path, annotator_of(request))

    @user_errors
    def export_all(self, request: gr.Request = None):
        """Every annotator's judgements as CSV; with login on, for admins only."""
        # A logged-in request means login is on, whatever the context says.
        logged_in = self.ctx.auth_enabled or getattr(request, "username", None)
        if logged_in and (not self.ctx.auth_enabled or owner_scope(self.ctx, request) is not None):
            raise ConfidantError(
                "With login on, each annotator exports their own judgements; only admins "
                "export everyone's."
            )
        path = export_judgements(self.ctx.store, rationale_of=stored_rationale)
        return offer(path, annotator_of(request))


def _shown_if_any(value):
    """A view box with its value, hidden when the run's kind has nothing to show in it."""
    return gr.update(value=value, visible=value is not None)


def create_history_tab(ctx: AppContext) -> None:
    """Lay out the History tab and wire its buttons to ``HistoryHandlers``."""
    h = HistoryHandlers(ctx)
    with gr.Tab("History", id="history"):
        gr.Markdown("Every run is saved. Open one to see it again, rebuilt from the database.")
        with gr.Row():
            kind = gr.Dropdown(
                [
                    "all",
                    "trace",
                    "semantic_entropy",
                    "inv_entropy",
                    "cip_game",
                    "judge",
                    "judge_reliability",
                ],
                value="all",
                label="Kind",
                scale=1,
            )
            refresh = gr.Button("Refresh", scale=0)
        table = gr.Dataframe(headers=RUN_TABLE_COLUMNS, interactive=False, wrap=True, label="Runs")
        with gr.Row():
            run_id = gr.Textbox(label="Run id", scale=3)
            open_btn = gr.Button("Open", variant="primary", scale=0)
        md = gr.Markdown()
        highlights = token_highlights(legend=False, visible=False)
        plot = gr.Plot(label="Plot", visible=False)
        plot2 = gr.Plot(label="Second plot", visible=False)
        prompt = prompt_accordion(
            "The exact text the run's model was sent, as stored with the run: the chat template "
            "applied, and whatever instruction the tab adds to the question."
        )
        raw = gr.JSON(label="Stored parameters and result", open=False)
        with gr.Row():
            runs_btn = gr.Button("Export runs (CSV)")
            who = gr.Textbox(
                label="Your annotator name",
                placeholder="the name you judged under",
                visible=not ctx.auth_enabled,
                scale=2,
            )
            judg_btn = gr.Button("Export my judgements (CSV)")
            all_judg_btn = gr.Button(
                "Export all judgements (CSV)", visible=not ctx.auth_enabled or bool(ctx.admins)
            )
        export_file = gr.File(label="Download", interactive=False)
        runs_files = gr.File(
            label="Runs: wide (a row per run: answers, measures) and long (a row per answer)",
            file_count="multiple",
            interactive=False,
        )

        refresh.click(h.list_runs, [kind], [table], api_name="list_runs")
        kind.change(h.list_runs, [kind], [table], api_visibility="private")
        table.select(first_cell_of_selected_row, [table], [run_id], api_visibility="private")
        open_btn.click(
            h.open_run, [run_id], [md, highlights, plot, plot2, raw], api_name="open_run"
        ).success(h.open_prompt, [run_id], [prompt], api_visibility="private")
        runs_btn.click(h.export_runs, None, [runs_files], api_name="export_runs")
        judg_btn.click(h.export_mine, [who], [export_file], api_name="export_my_judgements")
        all_judg_btn.click(h.export_all, None, [export_file], api_name="export_all_judgements")
        ctx.on_load.append((h.list_runs, [kind], [table]))
