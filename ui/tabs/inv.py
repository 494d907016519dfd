"""The Inv-Entropy tab: perturb a question, answer each version several times, and see which
perturbations moved the answer; plus an offline mode for answers collected elsewhere.
"""

from __future__ import annotations

import time

import gradio as gr

from core.errors import ConfidantError
from core.text import md_text
from store.runs import save_run
from ui.components.inputs import number
from ui.components.prompt import prompt_accordion, prompt_update
from ui.components.results import saved_note
from ui.context import AppContext, annotator_of, session_of, user_errors
from ui.plots.inv import (
    INPUT_COLUMNS,
    RESPONSE_COLUMNS,
    bootstrap_histogram,
    heatmaps_figure,
    input_rows,
    measures_markdown,
    response_rows,
)
from ui.plots.trace import cut_note
from uq.inv.measures import stored_measures as inv_stored_measures
from uq.inv.offline import inv_entropy_offline, parse_offline_table
from uq.inv.options import DEFAULT_SIMILARITY, SIMILARITY_DEFAULT_WHY, check_options
from uq.inv.perturbation import given_perturbation
from uq.inv.pipeline import PROMPT_NOTE, run_inv_entropy
from uq.inv.result import InvEntropyRun
from uq.trace import clean_question

METHOD_CHOICES = [
    ("LLM paraphrases", "paraphrase"),
    ("GAAP (genetic word substitutions)", "gaap"),
    ("My own list", "given"),
]
_SIMILARITY_LABELS = {
    "embedding_abs": "Embeddings, |cos| — the authors' code",
    "embedding": "Embeddings, (1 + cos)/2 — the paper",
    "nli": "NLI entailment, both directions (slow)",
}
# The default first and marked as such.
SIMILARITY_CHOICES = [
    (label + (" (default)" if value == DEFAULT_SIMILARITY else ""), value)
    for value, label in sorted(_SIMILARITY_LABELS.items(), key=lambda i: i[0] != DEFAULT_SIMILARITY)
]

OFFLINE_EXAMPLE = """input,response
What is the capital of France?,Paris
What is the capital of France?,Paris.
Which city is the capital of France?,Paris
Which city is the capital of France?,Lyon
Name the French capital.,Paris
Name the French capital.,It is Paris.
"""


def inv_views(run: InvEntropyRun) -> tuple:
    """(inputs table, responses table, heatmaps, histogram, measures markdown)."""
    return (
        input_rows(run),
        response_rows(run),
        heatmaps_figure(run),
        bootstrap_histogram(run),
        measures_markdown(run),
    )


def render_inv_entropy(run: dict) -> dict:
    """History view of a stored run, rebuilt from its result alone (no model)."""
    result = InvEntropyRun.from_dict(run["result"])
    inputs = "\n".join(
        f"{i}. ({row[2]:.3f}) {md_text(row[3], empty='∅')}"
        for i, row in enumerate(input_rows(result))
    )
    limit = (result.params or {}).get("max_new_tokens")
    answers = "\n".join(
        f"- {md_text(role)}: {md_text(gen.text, empty='∅')}"
        + (f" ✂ {cut}" if (cut := cut_note(gen, limit, short=True)) else "")
        for role, gen in run.get("generations") or []
    )
    answers = f"**Answers** (input · replicate):\n\n{answers}\n\n" if answers else ""
    return {
        "markdown": f"**Question:** {md_text(result.question, inline=False)}\n\n"
        f"**Inputs** (similarity to the original):\n\n{inputs}\n\n"
        + answers
        + measures_markdown(result),
        "plot": heatmaps_figure(result),
        "plot2": bootstrap_histogram(result),
        "highlights": None,
    }


def check_offline(table, upload, *rest) -> None:
    """The offline event's input checks (a bounded read of the table), run before its job is
    queued."""
    path = upload if isinstance(upload, str) and upload else None
    parse_offline_table(table if not path else None, path=path)


class InvHandlers:
    """The Inv-Entropy tab's event handlers, callable directly (tests) or from Gradio."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def _save(self, run: InvEntropyRun, request, started: float, model: str | None) -> str:
        generations = [
            (f"x{i}.r{k + 1}", generation)
            for i, row in enumerate(run.generations or [])
            for k, generation in enumerate(row)
        ]
        return save_run(
            self.ctx.store,
            kind="inv_entropy",
            model=model,
            params=run.params,
            seed=run.params.get("seed"),
            result=run.to_dict(),
            generations=generations,
            title=run.question[:200],
            annotator=annotator_of(request),
            session_id=session_of(request),
            duration=time.perf_counter() - started,
        )

    @user_errors
    def measure(
        self,
        question,
        method,
        own_list,
        n,
        replicates,
        similarity,
        bootstraps,
        seed,
        temperature,
        max_new_tokens,
        delta=0.7,
        request: gr.Request = None,
        progress=gr.Progress(),  # noqa: B008 - how Gradio injects the progress bar
    ):
        """Perturb the question, answer every version several times, save the run; returns
        (inputs table, answers table, heatmaps, bootstrap histogram, measures, prompt sent,
        status)."""
        question = clean_question(question)
        options = check_options(
            perturbation=method,
            n=n,
            replicates=replicates,
            similarity=similarity,
            bootstraps=bootstraps,
            seed=seed,
        )
        temperature = number(temperature, "the temperature")
        max_new_tokens = int(number(max_new_tokens, "max new tokens"))
        delta = number(delta, "GAAP δ")
        if not 0.0 < delta < 1.0:
            raise ConfidantError(f"GAAP δ must be between 0 and 1, got {delta}")
        own = given_perturbation(own_list).perturbations if method == "given" else None
        started = time.perf_counter()
        lm = self.ctx.backends.generator()
        needs_embedder = similarity != "nli" or method == "gaap"
        embed = self.ctx.backends.embedder() if needs_embedder else None
        nli = self.ctx.backends.nli() if similarity == "nli" else None
        run = run_inv_entropy(
            question,
            lm,
            embed,
            nli,
            perturbation=method,
            perturbations=own,
            n=options["n"],
            replicates=options["replicates"],
            similarity=similarity,
            bootstraps=options["bootstraps"],
            seed=options["seed"],
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            gaap_options={"delta": delta} if method == "gaap" else None,
            progress=lambda fraction, message: progress(fraction, desc=message),
        )
        run_id = self._save(run, request, started, lm.model_id)
        return (*inv_views(run), prompt_update(run.prompt_sent), saved_note(run_id))

    @user_errors
    def measure_offline(
        self, table, upload, similarity, bootstraps, seed, request: gr.Request = None
    ):
        """Inv-Entropy of answers collected elsewhere (a pasted or uploaded table), saved as a
        run; returns the same six outputs as ``measure``."""
        options = check_options(
            perturbation="given", similarity=similarity, bootstraps=bootstraps, seed=seed
        )
        path = upload if isinstance(upload, str) and upload else None
        inputs, responses = parse_offline_table(table if not path else None, path=path)
        started = time.perf_counter()
        embed = self.ctx.backends.embedder() if similarity != "nli" else None
        nli = self.ctx.backends.nli() if similarity == "nli" else None
        run = inv_entropy_offline(
            inputs,
            responses,
            embed,
            nli,
            similarity=similarity,
            bootstraps=options["bootstraps"],
            seed=options["seed"],
        )
        run_id = self._save(run, request, started, "black box (answers supplied)")
        return (*inv_views(run), saved_note(run_id))


def _result_components():
    inputs = gr.Dataframe(
        headers=INPUT_COLUMNS, interactive=False, wrap=True, label="Inputs and their similarity"
    )
    measures = gr.Markdown()
    heatmaps = gr.Plot(label="S_x, S_y and p(x | y)")
    histogram = gr.Plot(label="Per-bootstrap values")
    responses = gr.Dataframe(
        headers=RESPONSE_COLUMNS, interactive=False, wrap=True, label="Answers"
    )
    status = gr.Markdown()
    return [inputs, responses, heatmaps, histogram, measures, status]


def create_inv_entropy_tab(ctx: AppContext) -> None:
    """Lay out the Inv-Entropy tab and wire its buttons to ``InvHandlers``."""
    ctx.history_renderers["inv_entropy"] = render_inv_entropy
    ctx.run_measures["inv_entropy"] = inv_stored_measures
    handlers = InvHandlers(ctx)
    with gr.Tab("Inv-Entropy", id="inv_entropy"):
        gr.Markdown(
            "**Inv-Entropy** (Song et al. 2025) asks the question in several ways, answers each "
            "version several times, and asks the reverse question: *given an answer, how surely "
            "can you tell which input produced it?* Two random walks — one over the similarity "
            "of the inputs, one over the similarity of the answers — give p(x | y); when answers "
            "to different inputs blur together or scatter, the entropy rises. The heatmaps show "
            "which perturbations moved the answer."
        )
        with gr.Row():
            with gr.Column(scale=3):
                question = gr.Textbox(
                    label="Question", lines=2, placeholder="What is the capital of Australia?"
                )
                method = gr.Radio(METHOD_CHOICES, value="paraphrase", label="Perturbations")
                own_list = gr.Textbox(
                    label="My own perturbations (one per line; used with 'My own list')", lines=4
                )
                go_btn = gr.Button("Measure", variant="primary")
            with gr.Column(scale=2):
                n = gr.Slider(1, 30, value=9, step=1, label="n perturbations")
                replicates = gr.Slider(1, 20, value=5, step=1, label="r answers per input")
                similarity = gr.Dropdown(
                    SIMILARITY_CHOICES, value=DEFAULT_SIMILARITY, label="Similarity"
                )
                gr.Markdown(SIMILARITY_DEFAULT_WHY)
                bootstraps = gr.Slider(1, 200, value=20, step=1, label="B bootstraps")
                seed = gr.Number(value=0, precision=0, label="Seed")
                with gr.Accordion("Sampling and GAAP", open=False):
                    temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature")
                    max_new = gr.Slider(1, 256, value=32, step=1, label="Max new tokens per answer")
                    delta = gr.Slider(0.5, 0.95, value=0.7, step=0.01, label="GAAP δ")
        outputs = _result_components()
        outputs.insert(-1, prompt_accordion(PROMPT_NOTE))  # (…, measures, prompt, status)
        go_btn.click(
            handlers.measure,
            inputs=[
                question,
                method,
                own_list,
                n,
                replicates,
                similarity,
                bootstraps,
                seed,
                temperature,
                max_new,
                delta,
            ],  # fmt: skip
            outputs=outputs,
            api_name="inv_entropy",
            concurrency_id="model",
            concurrency_limit=1,
        )
        with gr.Accordion(
            "Offline: answers you already have (black box, no generator)", open=False
        ):
            gr.Markdown(
                "Paste or upload a CSV (columns `input`, `response`) or JSONL (`input` with "
                "`response` or `responses`). The first input is the original question; every "
                "input needs the same number of answers. Only the embedding model runs."
            )
            table = gr.Textbox(label="Table (CSV or JSONL)", lines=8, value=OFFLINE_EXAMPLE)
            upload = gr.File(label="…or upload a file", file_types=[".csv", ".jsonl", ".txt"])
            with gr.Row():
                off_similarity = gr.Dropdown(
                    SIMILARITY_CHOICES, value=DEFAULT_SIMILARITY, label="Similarity"
                )
                off_bootstraps = gr.Slider(1, 200, value=20, step=1, label="B bootstraps")
                off_seed = gr.Number(value=0, precision=0, label="Seed")
            off_btn = gr.Button("Measure my answers")
            off_outputs = _result_components()
            off_btn.click(
                handlers.measure_offline,
                inputs=[table, upload, off_similarity, off_bootstraps, off_seed],
                outputs=off_outputs,
                api_name="inv_entropy_offline",
                concurrency_id="model",
                concurrency_limit=1,
            )
