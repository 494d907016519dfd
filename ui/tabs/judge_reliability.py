"""The Judge tab's "Reliability report": pick questions (the authored reliability set, the demo
set or an upload in the demo-set layout), run :func:`judge.report.reliability_report`, show the
measure table and the score methods side by side with plots, and save the report as a run
(History, kind ``judge_reliability``)."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from core.errors import ConfidantError
from judge.config import JudgeConfig
from judge.items import DEMO_PATH, load_questions
from judge.report import RUN_KIND, ReportConfig, reliability_report
from store.runs import save_run
from ui.context import AppContext, annotator_of, session_of, user_errors
from ui.plots.reliability import flip_figure, length_figure, report_markdown, spread_figure

RELIABILITY_PATH = DEMO_PATH.with_name("reliability.jsonl")
SOURCES = {"reliability set": RELIABILITY_PATH, "demo set": DEMO_PATH}
UPLOAD = "upload"


class ReliabilityHandlers:
    """The report's handler, callable directly (tests) or from Gradio."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def questions(self, source: str, upload: str | None, n_questions) -> list[dict]:
        """The questions the report runs on: the first ``n_questions`` of the chosen set."""
        if source == UPLOAD:
            if not upload:
                raise ConfidantError("Upload a .jsonl file of questions with candidates first.")
            path = Path(upload)
        elif source in SOURCES:
            path = SOURCES[source]
        else:
            raise ConfidantError(f"Pick the items: one of {[*SOURCES, UPLOAD]}.")
        try:
            n = int(n_questions)
        except (TypeError, ValueError):
            raise ConfidantError("The number of questions must be a whole number.") from None
        return load_questions(path, limit=n)

    @user_errors
    def run(
        self,
        source,
        upload,
        n_questions,
        k,
        temperature,
        max_new_tokens,
        request: gr.Request = None,
    ):
        """(report Markdown, flip-rate figure, score-vs-length figure, spread figure); the
        report is saved as a run."""
        questions = self.questions(source, upload, n_questions)
        try:
            config = ReportConfig(
                judge=JudgeConfig(max_new_tokens=int(max_new_tokens)),
                k=int(k),
                temperature=float(temperature),
            ).validate()
        except (TypeError, ValueError):
            raise ConfidantError("The report settings must be numbers.") from None
        lm = self.ctx.backends.generator()
        started = time.perf_counter()
        report = reliability_report(lm, questions, config)
        run_id = save_run(
            self.ctx.store,
            kind=RUN_KIND,
            model=lm.model_id,
            params=config.to_dict(),
            seed=config.judge.seed,
            result=report.to_dict(),
            title=f"Reliability report on {len(questions)} question(s) ({source})",
            annotator=annotator_of(request),
            session_id=session_of(request),
            duration=time.perf_counter() - started,
        )
        data = report.to_dict()
        return (
            report_markdown(data) + f"\n\nSaved as run `{run_id}` (History tab, kind {RUN_KIND}).",
            flip_figure(data["methods"]),
            length_figure(data["statistics"]),
            spread_figure(data["statistics"]),
        )


def create_reliability_section(ctx: AppContext) -> None:
    """The "Reliability report" accordion of the Judge tab."""
    h = ReliabilityHandlers(ctx)
    with gr.Accordion("Reliability report (position, length, spread, human agreement)", open=False):
        gr.Markdown(
            "Grades every candidate once exactly and **k** times at the temperature, compares "
            "every pair in both orders, then measures position bias, length bias, run-to-run "
            "spread and agreement with the authored scores, each with a bootstrap interval, "
            "and compares the score methods side by side. Slow with a real model: start small."
        )
        with gr.Row():
            source = gr.Dropdown([*SOURCES, UPLOAD], value="reliability set", label="Items")
            upload = gr.File(label="Questions (.jsonl, demo-set layout)", type="filepath")
            n_q = gr.Slider(1, 20, value=2, step=1, label="Questions")
        with gr.Row():
            k = gr.Slider(1, 10, value=3, step=1, label="k runs per answer")
            temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.1, label="Temperature of the runs")
            max_new = gr.Slider(1, 512, value=64, step=1, label="Max new tokens")
        button = gr.Button("Run reliability report", variant="primary")
        out = gr.Markdown()
        with gr.Row():
            flips = gr.Plot(label="Flip rate per method")
            lengths = gr.Plot(label="Score vs length")
        spread = gr.Plot(label="Spread per answer")
        button.click(
            h.run,
            [source, upload, n_q, k, temperature, max_new],
            [out, flips, lengths, spread],
            api_name="judge_reliability",
            concurrency_id="model",
            concurrency_limit=1,
        )
