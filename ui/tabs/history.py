"""The History tab: past runs, reopened from the database without a model, and exports."""

from __future__ import annotations

import gradio as gr

from core.errors import ConfidantError
from store.export import export_runs_csv
from store.judgements import export_judgements
from store.runs import get_run, list_runs
from ui.context import AppContext, annotator_of, user_errors
from ui.plots.trace import entropy_highlights, summary_markdown, trace_figure
from uq.trace import TraceResult

RUN_TABLE_COLUMNS = ["id", "kind", "title", "model", "created", "annotator"]


def render_trace(run: dict) -> dict:
    result = TraceResult.from_dict(run["result"])
    return {
        "markdown": f"**Question:** {result.question}\n\n**Answer:** {result.generation.text}\n\n"
        + summary_markdown(result.summary, result.notes),
        "plot": trace_figure(result.generation),
        "highlights": entropy_highlights(result.generation),
    }


def runs_table(ctx: AppContext, kind: str | None = None) -> list[list]:
    rows = list_runs(ctx.store, kind=None if kind in (None, "", "all") else kind)
    return [[r.get(c) or "" for c in RUN_TABLE_COLUMNS] for r in rows]


def open_run(ctx: AppContext, run_id: str) -> dict:
    run_id = (run_id or "").strip()
    if not run_id:
        raise ConfidantError("Pick a run from the table (or paste its id) first.")
    run = get_run(ctx.store, run_id)
    if run is None:
        raise ConfidantError(f"No run with id {run_id!r}.")
    renderer = ctx.history_renderers.get(run["kind"])
    view = (
        renderer(run)
        if renderer
        else {"markdown": f"Runs of kind `{run['kind']}` have no view; the stored result is below."}
    )
    header = (
        f"### {run['kind']} · {run['created']}\nmodel `{run['model']}` · seed {run['seed']} · "
        f"{(run['duration'] or 0):.2f} s\n\n"
    )
    view["markdown"] = header + view.get("markdown", "")
    view["json"] = {"params": run["params"], "result": run["result"]}
    return view


def create_history_tab(ctx: AppContext) -> None:
    ctx.history_renderers.setdefault("trace", render_trace)
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
        highlights = gr.HighlightedText(
            label="Tokens coloured by entropy", combine_adjacent=False, show_legend=True
        )
        plot = gr.Plot(label="Plot")
        plot2 = gr.Plot(label="Second plot", visible=True)
        raw = gr.JSON(label="Stored parameters and result", open=False)
        with gr.Row():
            runs_btn = gr.Button("Export runs (CSV)")
            judg_btn = gr.Button("Export my judgements (CSV)")
            all_judg_btn = gr.Button("Export all judgements (CSV)", visible=not ctx.auth_enabled)
        export_file = gr.File(label="Download", interactive=False)

        @user_errors
        def do_refresh(k):
            return runs_table(ctx, k)

        @user_errors
        def do_open(rid):
            v = open_run(ctx, rid)
            return (
                v.get("markdown", ""),
                v.get("highlights"),
                v.get("plot"),
                v.get("plot2"),
                v.get("json"),
            )

        def pick(evt: gr.SelectData, data):
            try:
                row = evt.index[0]
                return data.iloc[row, 0] if hasattr(data, "iloc") else data[row][0]
            except Exception:  # noqa: BLE001
                return gr.skip()

        @user_errors
        def do_export_runs():
            return str(export_runs_csv(ctx.store))

        @user_errors
        def do_export_mine(request: gr.Request = None):
            who = annotator_of(request)
            if not who:  # never fall through to "everyone's" (annotator=None means all)
                raise ConfidantError(
                    "Log in to export your judgements."
                    if ctx.auth_enabled
                    else "Nobody is logged in, so no judgements are yours: use "
                    "“Export all judgements”."
                )
            return str(export_judgements(ctx.store, annotator=who))

        @user_errors
        def do_export_all(request: gr.Request = None):
            # A logged-in request means login is on, whatever the context says.
            if ctx.auth_enabled or getattr(request, "username", None):
                raise ConfidantError("With login on, each annotator exports their own judgements.")
            return str(export_judgements(ctx.store))

        refresh.click(do_refresh, [kind], [table], api_name="list_runs")
        kind.change(do_refresh, [kind], [table], api_visibility="private")
        table.select(pick, [table], [run_id], api_visibility="private")
        open_btn.click(do_open, [run_id], [md, highlights, plot, plot2, raw], api_name="open_run")
        runs_btn.click(do_export_runs, None, [export_file], api_name="export_runs")
        judg_btn.click(do_export_mine, None, [export_file], api_name="export_my_judgements")
        all_judg_btn.click(do_export_all, None, [export_file], api_name="export_all_judgements")
        ctx.on_load.append((do_refresh, [kind], [table]))
