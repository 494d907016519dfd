"""Causal language models on transformers: loading, prompts, and sampling with per-token traces.

Every sampled token is recorded with its log-probability under the raw model distribution
(temperature 1, no truncation) and under the distribution actually sampled from, plus the
entropy and varentropy of the raw distribution and its top alternatives. The statistics are
computed inside ``generate`` by two logits processors (one before the sampling warpers, one
after; see :mod:`backends.hf_trace`), so nothing of vocabulary size is kept beyond one step.
Teacher-forced scoring (``score``, ``score_tree``, ``choice_probs``) lives in
:mod:`backends.hf_scoring`.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Sequence
from pathlib import Path

import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from backends.base import Capabilities, Generation, SamplingParams
from backends.gpu import draw_seed, generation_seconds, gpu
from backends.hf_scoring import HFScoringMixin
from backends.hf_trace import (  # noqa: F401 - entropy_and_varentropy: public name of this module
    RawRecorder,
    SampledRecorder,
    entropy_and_varentropy,
    generations_from_trace,
)
from core.errors import ConfidantError, ModelLoadError, PromptTooLongError

transformers.utils.logging.disable_progress_bar()


def pick_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str) -> torch.dtype:
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_error_message(model_id: str, exc: BaseException) -> str:
    """A message that says what went wrong loading a model and how to fix it."""
    text = str(exc)
    looks_like_path = model_id.startswith((".", "/", "~"))
    if looks_like_path and not Path(model_id).expanduser().exists():
        return (
            f"Could not load model {model_id!r}: there is no such directory. Fix: give the path "
            "of a local model directory (with config.json), or a hub id such as "
            "Qwen/Qwen2.5-0.5B-Instruct (offline: --model smollm2-135m, the embedded model)."
        )
    if isinstance(exc, torch.OutOfMemoryError | MemoryError) or "out of memory" in text.lower():
        hint = "it does not fit in memory: choose a smaller model or free memory"
    elif not Path(model_id).exists() and (
        "offline" in text.lower()
        or "connect" in text.lower()
        or "resolve" in text.lower()
        or "not a valid model identifier" in text.lower()
        or "does not appear to have" in text.lower()
        or "repository not found" in text.lower()
        or "404" in text
    ):
        hint = (
            "check the hub id is spelled right and that this machine can reach the Hugging Face "
            "Hub, or pass the path of a local model directory (offline: --model smollm2-135m, the embedded model)"
        )
    else:
        hint = "check the model id or directory; the error above says what the loader found"
    return f"Could not load model {model_id!r}: {text.splitlines()[0] if text else type(exc).__name__}. Fix: {hint}."


class _RowTemperature(LogitsProcessor):
    """Divides each row's logits by its own temperature (a batch that mixes temperatures)."""

    def __init__(self, temperatures: torch.Tensor) -> None:
        self.temperatures = temperatures

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores / self.temperatures.to(scores.device, scores.dtype)[:, None]


class HFCausalLM(HFScoringMixin):
    """A transformers causal LM, loaded lazily on first use and safe to share across threads.

    ``model_id`` is a hub id or a local directory; both go through ``from_pretrained``.
    """

    capabilities = Capabilities(
        exact_scoring=True,
        per_row_temperature=True,
        streams=True,
        truncated_logprobs=False,
        token_ids=True,
    )

    def __init__(
        self,
        model_id: str,
        *,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        max_batch: int = 64,
        display_name: str | None = None,
    ) -> None:
        self.model_id = display_name or model_id
        self._path = model_id
        self.device = device or pick_device()
        self.dtype = dtype or pick_dtype(self.device)
        self.max_batch = max_batch
        self._model = None
        self._tokenizer = None
        self._load_lock = threading.Lock()
        # One forward at a time per model: generate and seeding are not thread-safe.
        self._run_lock = threading.RLock()

    # -- loading -----------------------------------------------------------------------------

    def load(self) -> HFCausalLM:
        if self._model is not None:
            return self
        with self._load_lock:
            if self._model is not None:
                return self
            try:
                tokenizer = AutoTokenizer.from_pretrained(self._path)
                model = AutoModelForCausalLM.from_pretrained(self._path, dtype=self.dtype)
            except Exception as exc:  # noqa: BLE001 - every loader failure becomes one message
                raise ModelLoadError(load_error_message(self._path, exc)) from exc
            model.to(self.device)
            model.eval()
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "left"
            self._tokenizer = tokenizer
            self._model = model
        return self

    @property
    def model(self):
        return self.load()._model

    @property
    def tokenizer(self):
        return self.load()._tokenizer

    # -- prompts -----------------------------------------------------------------------------

    def format_prompt(self, prompt: str, *, chat: bool = True) -> str:
        tok = self.tokenizer
        if chat and getattr(tok, "chat_template", None):
            return tok.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        return prompt

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _prompt_ids(self, prompt: str, chat: bool) -> list[int]:
        text = self.format_prompt(prompt, chat=chat)
        # A chat template already contains its special tokens; a raw prompt gets the tokenizer's.
        ids = self.tokenizer(text, add_special_tokens=not chat).input_ids
        if not ids:
            bos = self.tokenizer.bos_token_id
            ids = [bos if bos is not None else self.tokenizer.eos_token_id]
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and 0 < limit < len(ids):
            raise PromptTooLongError(len(ids), limit, self.model_id)
        return ids

    # -- sampling ----------------------------------------------------------------------------

    def _generation_config(self, params: SamplingParams, greedy: bool) -> GenerationConfig:
        tok = self.tokenizer
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = tok.eos_token_id
        # Explicit values for everything a model's own generation_config may set, so that
        # the raw distribution is the model's and the sampling one is exactly what was asked.
        sampling = (
            {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
            if not greedy
            else {"temperature": None, "top_k": None, "top_p": None}
        )
        return GenerationConfig(
            do_sample=not greedy,
            repetition_penalty=1.0,
            max_new_tokens=params.max_new_tokens,
            num_return_sequences=1,
            eos_token_id=eos,
            pad_token_id=tok.pad_token_id,
            stop_strings=list(params.stop) or None,
            **sampling,
        )

    def _processors(self, params: SamplingParams, greedy: bool, row_temperatures=None):
        raw = RawRecorder()
        sampled = SampledRecorder()
        procs = [raw]
        if not greedy:
            if row_temperatures is not None:
                procs.append(_RowTemperature(torch.tensor(row_temperatures)))
            elif params.temperature != 1.0:
                procs.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k:
                procs.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                procs.append(TopPLogitsWarper(params.top_p))
            if len(procs) > 1:
                procs.append(sampled)
            else:  # no warper: the sampling distribution is the raw one, nothing to recompute
                sampled.same_as_raw = True
        return raw, sampled, LogitsProcessorList(procs)

    def sample(self, prompt: str, params: SamplingParams, *, chat: bool = True) -> list[Generation]:
        """``params.n`` answers from ONE batched ``generate`` call (the prompt repeated n times).

        A temperature of 0 means greedy decoding. When ``params.seed`` is None a seed is drawn
        and written back into ``params`` so the caller can record it.
        """
        return self.sample_batch([prompt], params, chat=chat)[0]

    @gpu(duration=generation_seconds, prepare=draw_seed)
    def sample_batch(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        *,
        chat: bool = True,
        streamer=None,
        temperatures: Sequence[float] | None = None,
    ) -> list[list[Generation]]:
        """``params.n`` answers to each prompt; all prompts × n in batched ``generate`` calls
        of at most ``max_batch`` sequences.

        ``temperatures`` (optional, one per prompt, each in (0, 5]) overrides
        ``params.temperature`` per prompt, so answers at different temperatures share one
        batch; top-k and top-p still apply to every row."""
        params.validate()
        if not prompts:
            return []
        row_temps = None
        if temperatures is not None:
            temps = [float(t) for t in temperatures]
            if len(temps) != len(prompts):
                raise ValueError(f"{len(temps)} temperatures for {len(prompts)} prompts")
            if not all(math.isfinite(t) and 0.0 < t <= 5.0 for t in temps):
                raise ConfidantError("per-prompt temperatures must be in (0, 5]")
            row_temps = [t for t in temps for _ in range(params.n)]
        if params.seed is None:
            params.seed = random.randrange(2**31)
        greedy = params.temperature == 0.0 and row_temps is None
        rows = [p for p in prompts for _ in range(params.n)]
        out: list[Generation] = []
        with self._run_lock, torch.inference_mode():
            torch.manual_seed(params.seed)
            for start in range(0, len(rows), self.max_batch):
                chunk = rows[start : start + self.max_batch]
                chunk_temps = row_temps[start : start + self.max_batch] if row_temps else None
                out.extend(self._generate(chunk, params, greedy, chat, streamer, chunk_temps))
        return [out[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]

    def greedy(
        self,
        prompt: str,
        max_new_tokens: int = 64,
        *,
        stop: Sequence[str] = (),
        chat: bool = True,
        streamer=None,
    ) -> Generation:
        params = SamplingParams(
            n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0, stop=list(stop)
        )
        return self.sample_batch([prompt], params, chat=chat, streamer=streamer)[0][0]

    def _generate(
        self,
        prompts: list[str],
        params: SamplingParams,
        greedy: bool,
        chat: bool,
        streamer,
        row_temperatures=None,
    ) -> list[Generation]:
        tok, model = self.tokenizer, self.model
        encoded = [self._prompt_ids(p, chat) for p in prompts]
        width = max(len(e) for e in encoded)
        pad = tok.pad_token_id
        input_ids = torch.tensor(
            [[pad] * (width - len(e)) + e for e in encoded], device=model.device
        )
        attention = torch.tensor(
            [[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=model.device
        )
        raw, sampled, processors = self._processors(params, greedy, row_temperatures)
        kwargs = {"tokenizer": tok} if params.stop else {}
        sequences = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            generation_config=self._generation_config(params, greedy),
            logits_processor=processors,
            streamer=streamer,
            **kwargs,
        )
        new = sequences[:, width:]
        if new.shape[1] == 0:
            return [Generation(text="", tokens=[], finish_reason="length") for _ in prompts]
        raw.finish(new[:, -1])
        if not greedy:
            sampled.finish(new[:, -1])
        eos = model.generation_config.eos_token_id
        return generations_from_trace(tok, eos, new, raw, sampled if not greedy else None, params)
