"""The History tab: past runs, reopened from the database without a model, and exports."""

from __future__ import annotations

import gradio as gr

from core.errors import ConfidantError
from store.export import export_runs_csv
from store.judgements import export_judgements
from store.runs import get_run, list_runs
from ui.components.prompt import prompt_accordion, stored_prompt_update
from ui.components.results import first_cell_of_selected_row, token_highlights
from ui.context import AppContext, annotator_of, user_errors

RUN_TABLE_COLUMNS = ["id", "kind", "title", "model", "created", "annotator"]


class HistoryHandlers:
    """The History tab's event handlers, callable directly (tests) or from Gradio. Each kind of
    run is shown by the ``render_<kind>(run) -> dict`` its own tab registers in
    ``ctx.history_renderers``."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @user_errors
    def list_runs(self, k):
        """The runs table, newest first, of one kind or of all (``"all"``)."""
        rows = list_runs(self.ctx.store, kind=None if k in (None, "", "all") else k)
        return [[r.get(c) or "" for c in RUN_TABLE_COLUMNS] for r in rows]

    def run_view(self, run_id: str) -> dict:
        """The view of a stored run (markdown, plot, plot2, highlights, json), rebuilt from the
        database by the renderer of its kind; a ``ConfidantError`` for a missing id."""
        run_id = (run_id or "").strip()
        if not run_id:
            raise ConfidantError("Pick a run from the table (or paste its id) first.")
        run = get_run(self.ctx.store, run_id)
        if run is None:
            raise ConfidantError(f"No run with id {run_id!r}.")
        renderer = self.ctx.history_renderers.get(run["kind"])
        no_view = f"Runs of kind `{run['kind']}` have no view; the stored result is below."
        view = renderer(run) if renderer else {"markdown": no_view}
        header = (
            f"### {run['kind']} · {run['created']}\nmodel `{run['model']}` · seed {run['seed']} · "
            f"{(run['duration'] or 0):.2f} s\n\n"
        )
        view["markdown"] = header + view.get("markdown", "")
        view["json"] = {"params": run["params"], "result": run["result"]}
        return view

    @user_errors
    def open_run(self, rid):
        """(markdown, highlights, plot, second plot, stored JSON) of one run."""
        v = self.run_view(rid)
        return (
            v.get("markdown", ""),
            v.get("highlights"),
            v.get("plot"),
            v.get("plot2"),
            v.get("json"),
        )

    @user_errors
    def open_prompt(self, rid):
        """The prompt the run stored (the "Prompt sent to the model" box), or an empty box
        whose label says none was stored."""
        run = get_run(self.ctx.store, (rid or "").strip()) if (rid or "").strip() else None
        return stored_prompt_update(run["result"] if run else None)

    @user_errors
    def export_runs(self):
        return str(export_runs_csv(self.ctx.store))

    @user_errors
    def export_mine(self, request: gr.Request = None):
        """The logged-in (or named) annotator's judgements as CSV."""
        who = annotator_of(request)
        if not who:  # never fall through to "everyone's" (annotator=None means all)
            raise ConfidantError(
                "Log in to export your judgements."
                if self.ctx.auth_enabled
                else "Nobody is logged in, so no judgements are yours: use “Export all judgements”."
            )
        return str(export_judgements(self.ctx.store, annotator=who))

    @user_errors
    def export_all(self, request: gr.Request = None):
        """Every annotator's judgements as CSV; refused when login is on."""
        # A logged-in request means login is on, whatever the context says.
        if self.ctx.auth_enabled or getattr(request, "username", None):
            raise ConfidantError("With login on, each annotator exports their own judgements.")
        return str(export_judgements(self.ctx.store))


def create_history_tab(ctx: AppContext) -> None:
    """Lay out the History tab and wire its buttons to ``HistoryHandlers``."""
    h = HistoryHandlers(ctx)
    with gr.Tab("History", id="history"):
        gr.Markdown("Every run is saved. Open one to see it again, rebuilt from the database.")
        with gr.Row():
            kind = gr.Dropdown(
                ["all", "trace", "semantic_entropy", "inv_entropy", "cip_game", "judge"],
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
        highlights = token_highlights()
        plot = gr.Plot(label="Plot")
        plot2 = gr.Plot(label="Second plot", visible=True)
        prompt = prompt_accordion(
            "The exact text the run's model was sent, as stored with the run: the chat template "
            "applied, and whatever instruction the tab adds to the question."
        )
        raw = gr.JSON(label="Stored parameters and result", open=False)
        with gr.Row():
            runs_btn = gr.Button("Export runs (CSV)")
            judg_btn = gr.Button("Export my judgements (CSV)")
            all_judg_btn = gr.Button("Export all judgements (CSV)", visible=not ctx.auth_enabled)
        export_file = gr.File(label="Download", interactive=False)

        refresh.click(h.list_runs, [kind], [table], api_name="list_runs")
        kind.change(h.list_runs, [kind], [table], api_visibility="private")
        table.select(first_cell_of_selected_row, [table], [run_id], api_visibility="private")
        open_btn.click(
            h.open_run, [run_id], [md, highlights, plot, plot2, raw], api_name="open_run"
        ).success(h.open_prompt, [run_id], [prompt], api_visibility="private")
        runs_btn.click(h.export_runs, None, [export_file], api_name="export_runs")
        judg_btn.click(h.export_mine, None, [export_file], api_name="export_my_judgements")
        all_judg_btn.click(h.export_all, None, [export_file], api_name="export_all_judgements")
        ctx.on_load.append((h.list_runs, [kind], [table]))
