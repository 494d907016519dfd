"""The Generate tab: one answer, streamed, with its per-token entropy trace."""

from __future__ import annotations

import threading
import time

import gradio as gr

from backends.base import SamplingParams, capabilities_of, check_seed
from core.text import md_text
from store.runs import save_run
from ui.components.prompt import prompt_accordion, prompt_update
from ui.components.results import saved_note, token_highlights
from ui.context import AppContext, annotator_of, log, session_of, user_errors
from ui.plots.trace import cut_note, entropy_highlights, summary_markdown, trace_figure
from uq.trace import PROMPT_NOTE, TraceResult, clean_question, run_trace, stored_measures


def trace_views(result: TraceResult):
    """(answer text, figure, highlights, summary markdown) for a stored or fresh result."""
    gen = result.generation
    return (
        gen.text,
        trace_figure(gen),
        entropy_highlights(gen),
        summary_markdown(result.summary, _notes(result)),
    )


def _notes(result: TraceResult) -> list[str]:
    """The result's notes, and a warning first when the answer was cut at the token limit."""
    cut = cut_note(result.generation, (result.params or {}).get("max_new_tokens"))
    return ([cut] if cut else []) + list(result.notes)


class GenerateHandlers:
    """The Generate tab's event handlers, callable directly (tests) or from Gradio."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @user_errors
    def generate(
        self, question, temperature, top_p, top_k, max_new_tokens, seed, request: gr.Request = None
    ):
        """Stream the answer as it is generated, then save the run; yields (answer text,
        entropy figure, highlights, summary markdown, prompt sent, status)."""
        question = clean_question(question)
        params = SamplingParams(
            n=1,
            temperature=float(temperature),
            top_p=float(top_p),
            top_k=int(top_k),
            max_new_tokens=int(max_new_tokens),
            seed=check_seed(seed) if seed not in (None, "") else None,
        ).validate()
        lm = self.ctx.backends.generator()
        yield "", None, None, "Generating…", gr.update(value=""), ""
        started = time.perf_counter()
        box: dict = {}
        streamer = None
        try:
            from transformers import TextIteratorStreamer

            if capabilities_of(lm).streams:
                streamer = TextIteratorStreamer(
                    lm.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
                )
        except ImportError:
            streamer = None

        def work():
            try:
                kwargs = {"streamer": streamer} if streamer is not None else {}
                box["result"] = run_trace(lm, question, params, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the handler thread
                box["error"] = exc
                if streamer is not None:
                    streamer.end()

        def save(result: TraceResult) -> str:
            return save_run(
                self.ctx.store,
                kind="trace",
                model=result.model,
                params=result.params,
                seed=params.seed,
                result=result.to_dict(),
                generations=[("answer", result.generation)],
                title=question[:200],
                annotator=annotator_of(request),
                session_id=session_of(request),
                duration=time.perf_counter() - started,
            )

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            if streamer is not None:
                text = ""
                for piece in streamer:
                    text += piece
                    yield text, gr.skip(), gr.skip(), "Generating…", gr.skip(), gr.skip()
        except GeneratorExit:
            # The page was closed or reloaded while the answer streamed: the generation goes
            # on and is saved when it ends, so it is in History instead of lost.
            threading.Thread(target=_save_when_done, args=(thread, box, save), daemon=True).start()
            raise
        thread.join()
        if "error" in box:
            raise box["error"]
        result: TraceResult = box["result"]
        run_id = save(result)
        text, fig, highlights, summary = trace_views(result)
        yield text, fig, highlights, summary, prompt_update(result.prompt_sent), saved_note(run_id)


def _save_when_done(thread: threading.Thread, box: dict, save) -> None:
    """Wait for an abandoned generation and save it, with a note saying why it has no viewer."""
    thread.join()
    result = box.get("result")
    if result is None:
        return
    result.notes.append(
        "The page was closed or reloaded while this answer was generated; it was saved when "
        "it finished."
    )
    try:
        save(result)
    except Exception:  # noqa: BLE001 - nobody is waiting for this answer: log it
        log.exception("could not save a generation whose page was closed")


def render_trace(run: dict) -> dict:
    """History view of a stored trace run, rebuilt without a model."""
    result = TraceResult.from_dict(run["result"])
    return {
        "markdown": f"**Question:** {md_text(result.question, inline=False)}\n\n"
        f"**Answer:** {md_text(result.generation.text, inline=False, empty='∅')}\n\n"
        + summary_markdown(result.summary, _notes(result)),
        "plot": trace_figure(result.generation),
        "highlights": entropy_highlights(result.generation),
    }


def create_generate_tab(ctx: AppContext) -> None:
    """Lay out the Generate tab and wire its button to ``GenerateHandlers.generate``."""
    ctx.history_renderers["trace"] = render_trace
    ctx.run_measures["trace"] = stored_measures
    handlers = GenerateHandlers(ctx)
    with gr.Tab("Generate", id="generate"):
        gr.Markdown(
            "Ask a question and watch the model answer. Each token is scored by the **entropy** "
            "of the model's raw next-token distribution (how unsure it was before choosing) and "
            "its **surprisal** (−log p of the token it chose). Hover the plot for the top "
            "alternatives."
        )
        with gr.Row():
            with gr.Column(scale=3):
                question = gr.Textbox(
                    label="Question", lines=3, placeholder="What is the capital of Australia?"
                )
                go_btn = gr.Button("Generate", variant="primary")
            with gr.Column(scale=2):
                with gr.Accordion("Sampling", open=False):
                    temperature = gr.Slider(
                        0.0, 2.0, value=0.0, step=0.05, label="Temperature (0 = greedy)"
                    )
                    top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p")
                    top_k = gr.Number(value=0, precision=0, label="Top-k (0 = off)")
                    max_new = gr.Slider(1, 1024, value=64, step=1, label="Max new tokens")
                    seed = gr.Number(value=0, precision=0, label="Seed")
        answer = gr.Textbox(label="Answer", lines=4, interactive=False)
        highlights = token_highlights("Answer coloured by token entropy (darker = more uncertain)")
        plot = gr.Plot(label="Entropy and surprisal per token")
        summary = gr.Markdown()
        prompt = prompt_accordion(PROMPT_NOTE)
        status = gr.Markdown()
        go_btn.click(
            handlers.generate,
            inputs=[question, temperature, top_p, top_k, max_new, seed],
            outputs=[answer, plot, highlights, summary, prompt, status],
            api_name="generate",
            concurrency_id="model",
            concurrency_limit=1,
        )
