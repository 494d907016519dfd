"""Builds the whole Gradio app: one module per tab."""

from __future__ import annotations

import gradio as gr

from store.export import EXPORT_TTL_S
from ui.components.jobs import limit_jobs
from ui.components.style import style_sheet
from ui.context import EMBEDDED_BANNER, TINY_BANNER, AppContext, models_line
from ui.tabs.cip import create_cip_tab
from ui.tabs.generate import create_generate_tab
from ui.tabs.history import create_history_tab
from ui.tabs.inv import check_offline, create_inv_entropy_tab
from ui.tabs.judge import create_judge_tab
from ui.tabs.semantic import create_semantic_tab
from ui.tabs.semantic_handlers import check_dataset_upload, check_pasted

# Each entry creates one tab; a new tab is one import and one line here.
TABS = [
    create_generate_tab,
    create_semantic_tab,
    create_cip_tab,
    create_inv_entropy_tab,
    create_judge_tab,
    create_history_tab,
]
# Cheap input checks of model events, by api_name: run when a job is queued, so an oversized
# upload is refused before it waits for the model.
QUEUE_CHECKS = {
    "score_answers": check_pasted,
    "evaluate_dataset": check_dataset_upload,
    "inv_entropy_offline": check_offline,
}


def build_app(ctx: AppContext) -> gr.Blocks:
    # Gradio's cached copies of uploads and exports are deleted an hour after they were made
    # (checked every 10 minutes), like the export folders themselves.
    with gr.Blocks(
        title="Confidant", analytics_enabled=False, delete_cache=(600, EXPORT_TTL_S)
    ) as demo:
        style_sheet()
        gr.Markdown(
            "# Confidant\nHow sure is this model? Can I trust this LLM judge? "
            + models_line(ctx.backends),
            elem_id="models-line",
        )
        if ctx.tiny:
            gr.Markdown(TINY_BANNER, elem_id="tiny-banner")
        if ctx.embedded:
            gr.Markdown(EMBEDDED_BANNER, elem_id="embedded-banner")
        with gr.Tabs():
            for create in TABS:
                create(ctx)
        for fn, inputs, outputs in ctx.on_load:
            demo.load(fn, inputs, outputs, api_visibility="private")
    # Each user's model jobs are counted from queueing to their end; one past the cap is refused.
    limit_jobs(demo, ctx.jobs, checks=QUEUE_CHECKS)
    return demo
