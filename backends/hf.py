"""Causal language models on transformers: sampling with per-token traces, and scoring.

Every sampled token is recorded with its log-probability under the raw model distribution
(temperature 1, no truncation) and under the distribution actually sampled from, plus the
entropy and varentropy of the raw distribution and its top alternatives. The statistics are
computed inside ``generate`` by two logits processors (one before the sampling warpers, one
after), so nothing of vocabulary size is kept beyond one step.
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

from backends.base import ContinuationScore, Generation, SamplingParams, TokenRecord
from backends.gpu import draw_seed, generation_seconds, gpu
from core.errors import ConfidantError, ModelLoadError, PromptTooLongError

TOP_ALTERNATIVES = 5

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
            "Qwen/Qwen2.5-0.5B-Instruct (offline: --model tiny-random)."
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
            "Hub, or pass the path of a local model directory (offline: --model tiny-random)"
        )
    else:
        hint = "check the model id or directory; the error above says what the loader found"
    return f"Could not load model {model_id!r}: {text.splitlines()[0] if text else type(exc).__name__}. Fix: {hint}."


def entropy_and_varentropy(logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shannon entropy H = −Σ p log p and varentropy V = Σ p (log p)² − H² (nats) of each row
    of log-probabilities; −inf entries (masked tokens) contribute nothing."""
    safe = logp.clamp_min(-1e4)
    plogp = safe.exp().mul_(safe)
    h = -plogp.sum(-1)
    v = torch.einsum("bv,bv->b", plogp, safe) - h * h
    return h, v


class _RawRecorder(LogitsProcessor):
    """Records raw-distribution statistics at each step; leaves the scores untouched.

    ``generate`` calls it once per step with the ids so far, whose last column is the token
    sampled at the previous step, so the chosen token's log-probability is gathered one step
    late; the last step's is gathered after ``generate`` returns.
    """

    def __init__(self) -> None:
        self.chosen: list[torch.Tensor] = []
        self.entropy: list[torch.Tensor] = []
        self.varentropy: list[torch.Tensor] = []
        self.top_logp: list[torch.Tensor] = []
        self.top_ids: list[torch.Tensor] = []
        self.prev: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prev is not None:
            self.chosen.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1))
        logp = torch.log_softmax(scores.float(), dim=-1)
        h, v = entropy_and_varentropy(logp)
        self.entropy.append(h)
        self.varentropy.append(v)
        top = logp.topk(TOP_ALTERNATIVES, dim=-1)
        self.top_logp.append(top.values)
        self.top_ids.append(top.indices)
        self.prev = logp
        return scores

    def finish(self, last_tokens: torch.Tensor) -> None:
        if self.prev is not None:
            self.chosen.append(self.prev.gather(1, last_tokens[:, None]).squeeze(1))
            self.prev = None


class _SampledRecorder(LogitsProcessor):
    """Log-probability of the chosen token under the sampling distribution (after warpers)."""

    def __init__(self) -> None:
        self.chosen: list[torch.Tensor] = []
        self.prev: torch.Tensor | None = None
        self.same_as_raw = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prev is not None:
            self.chosen.append(self.prev.gather(1, input_ids[:, -1:]).squeeze(1))
        self.prev = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, last_tokens: torch.Tensor) -> None:
        if self.prev is not None:
            self.chosen.append(self.prev.gather(1, last_tokens[:, None]).squeeze(1))
            self.prev = None


class _RowTemperature(LogitsProcessor):
    """Divides each row's logits by its own temperature (a batch that mixes temperatures)."""

    def __init__(self, temperatures: torch.Tensor) -> None:
        self.temperatures = temperatures

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores / self.temperatures.to(scores.device, scores.dtype)[:, None]


class HFCausalLM:
    """A transformers causal LM, loaded lazily on first use and safe to share across threads.

    ``model_id`` is a hub id or a local directory; both go through ``from_pretrained``.
    """

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
        raw = _RawRecorder()
        sampled = _SampledRecorder()
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
        return self._records(new, raw, sampled if not greedy else None, params)

    def _records(
        self,
        new: torch.Tensor,
        raw: _RawRecorder,
        sampled: _SampledRecorder | None,
        params: SamplingParams,
    ) -> list[Generation]:
        tok = self.tokenizer
        steps = new.shape[1]
        chosen = torch.stack(raw.chosen[:steps], 1).cpu().tolist()
        ent = torch.stack(raw.entropy[:steps], 1).cpu().tolist()
        var = torch.stack(raw.varentropy[:steps], 1).cpu().tolist()
        top_lp = torch.stack(raw.top_logp[:steps], 1).cpu()
        top_ids = torch.stack(raw.top_ids[:steps], 1).cpu()
        if sampled is None:
            samp = None
        elif sampled.same_as_raw:
            samp = chosen
        else:
            samp = torch.stack(sampled.chosen[:steps], 1).cpu().tolist()
        ids = new.cpu().tolist()
        eos = self.model.generation_config.eos_token_id
        eos_set = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        eos_set.add(tok.eos_token_id)
        vocab_text = _TokenTexts(tok)
        results = []
        for b, row in enumerate(ids):
            length, finish = len(row), "length"
            for j, t in enumerate(row):
                if t in eos_set:
                    length, finish = j, "stop"
                    break
            pieces = _incremental_pieces(tok, row[:length])
            text = "".join(pieces)
            cut = _stop_cut(text, params.stop)
            if cut is not None:
                text, finish = text[:cut], "stop"
            tokens = []
            offset = 0
            for j in range(length):
                start, piece = offset, pieces[j]
                offset += len(piece)
                if cut is not None:
                    if start >= cut:
                        break
                    piece = piece[: cut - start]
                top = [
                    (vocab_text(int(i)), math.exp(float(lp)))
                    for i, lp in zip(top_ids[b, j], top_lp[b, j], strict=True)
                ]
                tokens.append(
                    TokenRecord(
                        text=piece,
                        logprob=float(chosen[b][j]),
                        entropy=max(0.0, float(ent[b][j])),
                        varentropy=max(0.0, float(var[b][j])),
                        top=top,
                        sampling_logprob=float(samp[b][j]) if samp else 0.0,
                        token_id=int(row[j]),
                    )
                )
            results.append(Generation(text=text, tokens=tokens, finish_reason=finish))
        return results

    # -- scoring -----------------------------------------------------------------------------

    def score(
        self, prompt: str, continuations: Sequence[str], *, chat: bool = True
    ) -> list[ContinuationScore]:
        """Teacher-forced log-likelihood of each continuation: the prompt is encoded once and
        its KV cache shared by all continuations, which run as one batch."""
        return self.score_tree(prompt, [""], continuations, chat=chat)[0]

    def choice_probs(
        self, prompt: str, options: Sequence[str], *, chat: bool = True
    ) -> list[float]:
        """p(option | prompt) for each option, every token of a multi-token option included,
        normalised over the options: softmax of the options' total log-likelihoods."""
        if not options:
            return []
        scores = self.score(prompt, options, chat=chat)
        totals = torch.tensor([s.total_logprob for s in scores], dtype=torch.float64)
        return torch.softmax(totals, 0).tolist()

    @gpu(duration=60)
    def score_tree(
        self,
        prefix: str,
        suffixes: Sequence[str],
        continuations: Sequence[str],
        *,
        chat: bool = True,
        max_rows: int = 128,
        max_tokens: int = 1024,
    ) -> list[list[ContinuationScore]]:
        """log p(continuation | prefix + suffix) for every (suffix, continuation).

        The prefix is run once and its cache shared by every row. With ``chat`` the prefix goes
        through the chat template (it is the user turn) and suffixes start the assistant's reply.

        Rows (suffix + continuation tokens) are packed into one sequence as a token trie: a
        shared beginning (the suffix, the first digit of "57" and "58") is one position, each
        position attends to the prefix and its own ancestors through a 4-D attention mask, and
        the last token of a row is never fed (nothing is predicted from it). Chunks hold at most
        ``max_rows`` rows and ``max_tokens`` trie positions. Models whose attention cannot take a
        custom mask use right-padded batches of rows instead.
        """
        if not suffixes or not continuations:
            return [[] for _ in suffixes]
        model = self.model
        prefix_ids = self._prompt_ids(prefix, chat)
        rows: list[tuple[list[int], list[int]]] = []  # (suffix ids, continuation ids)
        for s in suffixes:
            s_ids = self._encode(s) if s else []
            for c in continuations:
                both = self._encode(s + c)
                if both[: len(s_ids)] == s_ids and len(both) > len(s_ids):
                    c_ids = both[len(s_ids) :]
                else:
                    c_ids = self._encode(c)
                if not c_ids:
                    raise ValueError(f"continuation {c!r} encodes to no tokens")
                rows.append((s_ids, c_ids))
        results: list[ContinuationScore] = []
        n_prefix = len(prefix_ids)
        packed = self._can_pack(n_prefix + max(len(s) + len(c) for s, c in rows))
        chunks = list(_trie_chunks(rows, max_rows, max_tokens)) if packed else []
        with self._run_lock, torch.inference_mode():
            if len(chunks) == 1 and n_prefix + max_tokens <= _ONE_PASS_LIMIT:
                # Everything fits one pass: the prefix and the trie in a single forward, so the
                # cost is one forward over prefix + trie positions.
                results = self._score_packed(rows, None, None, n_prefix, prefix_ids)
                per = len(continuations)
                return [results[i * per : (i + 1) * per] for i in range(len(suffixes))]
            ids = torch.tensor([prefix_ids], device=model.device)
            keep = {"logits_to_keep": 1} if self._accepts_logits_to_keep() else {}
            out = model(input_ids=ids, use_cache=True, **keep)
            base_cache = out.cache if hasattr(out, "cache") else out.past_key_values
            last_logp = torch.log_softmax(out.logits[0, -1].float(), -1)
            if packed:
                for chunk in chunks:
                    results.extend(self._score_packed(chunk, base_cache, last_logp, n_prefix))
            else:
                for start in range(0, len(rows), max_rows):
                    chunk = rows[start : start + max_rows]
                    results.extend(self._score_rows(chunk, base_cache, last_logp, n_prefix))
        per = len(continuations)
        return [results[i * per : (i + 1) * per] for i in range(len(suffixes))]

    def _accepts_logits_to_keep(self) -> bool:
        import inspect

        return "logits_to_keep" in inspect.signature(self.model.forward).parameters

    def _can_pack(self, longest: int) -> bool:
        """A custom 4-D mask is honoured by the eager and SDPA attention of decoder-only models;
        it would bypass a sliding window, so sequences longer than the window are not packed."""
        config = self.model.config
        if getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
            return False
        window = getattr(config, "sliding_window", None)
        if window and getattr(config, "use_sliding_window", True) and longest > window:
            return False
        return True

    def _score_packed(
        self, rows, base_cache, last_logp, n_prefix, prefix_ids=None
    ) -> list[ContinuationScore]:
        """Score rows as one trie after the prefix: from ``base_cache`` (the prefix already
        run), or, with ``prefix_ids``, with the prefix in the same forward (causal among
        itself, attended by every trie position)."""
        from transformers import DynamicCache

        tok, model = self.tokenizer, self.model
        trie = _Trie()
        for s_ids, c_ids in rows:
            trie.add(s_ids + c_ids)
        # Where each scored token's distribution comes from: -1 = after the prefix, else a node.
        sources = []
        for s_ids, c_ids in rows:
            seq = s_ids + c_ids
            sources.append([trie.node_of(seq, len(s_ids) + j) for j in range(len(c_ids))])
        needed = sorted({n for src in sources for n in src if n >= 0})
        node_logp: dict[int, torch.Tensor] = {}
        if prefix_ids is not None:
            size = len(trie.tokens)
            device = model.device
            total = n_prefix + size
            allowed = torch.zeros((total, total), dtype=torch.bool)
            allowed[:n_prefix, :n_prefix] = torch.ones(n_prefix, n_prefix).tril().bool()
            allowed[n_prefix:, :n_prefix] = True
            for i, parent in enumerate(trie.parents):
                row = n_prefix + i
                if parent >= 0:
                    allowed[row, n_prefix:] = allowed[n_prefix + parent, n_prefix:]
                allowed[row, row] = True
            mask = torch.zeros((1, 1, total, total), dtype=model.dtype)
            mask[0, 0] = torch.where(allowed, 0.0, torch.finfo(model.dtype).min)
            wanted = [n_prefix - 1] + [n_prefix + n for n in needed]
            keep = (
                {"logits_to_keep": torch.tensor(wanted, device=device)}
                if self._accepts_logits_to_keep()
                else {}
            )
            positions = list(range(n_prefix)) + [n_prefix + d for d in trie.depths]
            out = model(
                input_ids=torch.tensor([list(prefix_ids) + trie.tokens], device=device),
                attention_mask=mask.to(device),
                position_ids=torch.tensor([positions], device=device),
                use_cache=False,
                **keep,
            )
            logits = out.logits[0] if keep else out.logits[0, wanted]
            logp = torch.log_softmax(logits.float(), -1)
            last_logp = logp[0]
            node_logp = {n: logp[i + 1] for i, n in enumerate(needed)}
        elif needed:
            size = len(trie.tokens)
            device = model.device
            allowed = torch.zeros((size, size), dtype=torch.bool)
            for i, parent in enumerate(trie.parents):
                if parent >= 0:
                    allowed[i] = allowed[parent]
                allowed[i, i] = True
            blocked = torch.finfo(model.dtype).min
            mask = torch.zeros((1, 1, size, n_prefix + size), dtype=model.dtype)
            mask[0, 0, :, n_prefix:] = torch.where(allowed, 0.0, blocked)
            cache = DynamicCache([(k, v) for k, v, *_ in base_cache])
            keep = (
                {"logits_to_keep": torch.tensor(needed, device=device)}
                if self._accepts_logits_to_keep()
                else {}
            )
            out = model(
                input_ids=torch.tensor([trie.tokens], device=device),
                attention_mask=mask.to(device),
                position_ids=torch.tensor([[n_prefix + d for d in trie.depths]], device=device),
                cache=cache,
                use_cache=True,
                **keep,
            )
            logits = out.logits[0] if keep else out.logits[0, needed]
            logp = torch.log_softmax(logits.float(), -1)
            node_logp = {n: logp[i] for i, n in enumerate(needed)}
        scores = []
        for (_, c_ids), src in zip(rows, sources, strict=True):
            lps = [
                float((last_logp if n < 0 else node_logp[n])[t])
                for n, t in zip(src, c_ids, strict=True)
            ]
            scores.append(
                ContinuationScore(
                    text=tok.decode(c_ids),
                    token_logprobs=lps,
                    tokens=[tok.decode([t]) for t in c_ids],
                )
            )
        return scores

    def _score_rows(self, rows, base_cache, last_logp, n_prefix) -> list[ContinuationScore]:
        from transformers import DynamicCache

        tok, model = self.tokenizer, self.model
        seqs = [s + c for s, c in rows]
        width = max(len(x) for x in seqs)
        pad = tok.pad_token_id
        batch = len(rows)
        input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in seqs], device=model.device)
        mask = torch.tensor(
            [[1] * n_prefix + [1] * len(x) + [0] * (width - len(x)) for x in seqs],
            device=model.device,
        )
        positions = torch.arange(n_prefix, n_prefix + width, device=model.device)[None].expand(
            batch, -1
        )
        cache = DynamicCache(
            [
                (
                    k.expand(batch, *k.shape[1:]).contiguous(),
                    v.expand(batch, *v.shape[1:]).contiguous(),
                )
                for k, v, *_ in base_cache
            ]
        )
        out = model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
        )
        logp = torch.log_softmax(out.logits.float(), -1)  # (batch, width, vocab)
        scores = []
        for b, (s_ids, c_ids) in enumerate(rows):
            lps = []
            for j, t in enumerate(c_ids):
                pos = len(s_ids) + j  # position of token t in the row
                dist = last_logp if pos == 0 else logp[b, pos - 1]
                lps.append(float(dist[t]))
            scores.append(
                ContinuationScore(
                    text=tok.decode(c_ids),
                    token_logprobs=lps,
                    tokens=[tok.decode([t]) for t in c_ids],
                )
            )
        return scores


# Longest prefix + trie scored in one forward (its mask is this many positions squared).
_ONE_PASS_LIMIT = 4096


class _Trie:
    """Token prefixes of rows as a trie: node i holds one token, its parent and its depth."""

    def __init__(self) -> None:
        self.children: list[dict[int, int]] = []
        self.root: dict[int, int] = {}
        self.tokens: list[int] = []
        self.parents: list[int] = []
        self.depths: list[int] = []

    def missing(self, seq: list[int]) -> int:
        """How many nodes ``add(seq)`` would create."""
        level, depth = self.root, 0
        for depth, t in enumerate(seq[:-1]):
            if t not in level:
                return len(seq) - 1 - depth
            level = self.children[level[t]]
        return 0

    def add(self, seq: list[int]) -> None:
        """Insert every proper, non-empty prefix of ``seq`` (its last token is never fed)."""
        level, parent = self.root, -1
        for depth, t in enumerate(seq[:-1]):
            node = level.get(t)
            if node is None:
                node = len(self.tokens)
                level[t] = node
                self.children.append({})
                self.tokens.append(t)
                self.parents.append(parent)
                self.depths.append(depth)
            level, parent = self.children[node], node
        return None

    def node_of(self, seq: list[int], position: int) -> int:
        """The node whose output predicts ``seq[position]`` (-1: the prefix's last output)."""
        node, level = -1, self.root
        for t in seq[:position]:
            node = level[t]
            level = self.children[node]
        return node


def _trie_chunks(rows, max_rows: int, max_tokens: int):
    """Consecutive groups of rows whose trie has at most ``max_tokens`` nodes (a row longer
    than that is a group of its own) and at most ``max_rows`` rows."""
    chunk: list = []
    trie = _Trie()
    size = 0
    for row in rows:
        seq = row[0] + row[1]
        extra = trie.missing(seq)
        if chunk and (len(chunk) >= max_rows or size + extra > max_tokens):
            yield chunk
            chunk, trie, size = [], _Trie(), 0
            extra = len(seq) - 1
        trie.add(seq)
        chunk.append(row)
        size += extra
    if chunk:
        yield chunk


class _TokenTexts:
    """Cached text of single vocabulary items (for the top alternatives)."""

    def __init__(self, tokenizer) -> None:
        self.tok = tokenizer
        self.cache: dict[int, str] = {}

    def __call__(self, token_id: int) -> str:
        text = self.cache.get(token_id)
        if text is None:
            text = self.tok.decode([token_id], clean_up_tokenization_spaces=False)
            self.cache[token_id] = text
        return text


def _incremental_pieces(tokenizer, ids: list[int]) -> list[str]:
    """The text each token adds, so that the pieces concatenate to the decoded answer even
    when one character spans several byte-level tokens."""
    pieces, prev = [], ""
    for i in range(len(ids)):
        cur = tokenizer.decode(
            ids[: i + 1], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        if cur.startswith(prev):
            pieces.append(cur[len(prev) :])
        else:  # a partial character resolved: attribute the difference to this token
            common = 0
            while common < min(len(cur), len(prev)) and cur[common] == prev[common]:
                common += 1
            pieces[-1] = pieces[-1][: max(0, len(pieces[-1]) - (len(prev) - common))]
            pieces.append(cur[common:])
        prev = cur
    return pieces


def _stop_cut(text: str, stops: Sequence[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None
