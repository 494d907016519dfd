"""The per-token trace of ``generate``: logits processors that record each step's statistics,
and the assembly of :class:`Generation` records from them.

:class:`RawRecorder` runs before the sampling warpers and records, for every row, the raw
distribution's entropy H = −Σ p log p and varentropy V = Σ p (log p)² − H² (nats), its top
alternatives and the chosen token's log-probability; :class:`SampledRecorder` runs after the
warpers and records the chosen token's log-probability under the distribution sampled from.
Nothing of vocabulary size is kept beyond one step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from backends.base import Generation, SamplingParams, TokenRecord

TOP_ALTERNATIVES = 5


def entropy_and_varentropy(logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shannon entropy H = −Σ p log p and varentropy V = Σ p (log p)² − H² (nats) of each row
    of log-probabilities; −inf entries (masked tokens) contribute nothing."""
    safe = logp.clamp_min(-1e4)
    plogp = safe.exp().mul_(safe)
    h = -plogp.sum(-1)
    v = torch.einsum("bv,bv->b", plogp, safe) - h * h
    return h, v


class RawRecorder(LogitsProcessor):
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


class SampledRecorder(LogitsProcessor):
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


def generations_from_trace(
    tokenizer,
    eos: int | list[int] | None,
    new: torch.Tensor,
    raw: RawRecorder,
    sampled: SampledRecorder | None,
    params: SamplingParams,
) -> list[Generation]:
    """One :class:`Generation` per row of ``new`` (the generated ids, batch × steps), from the
    step statistics the recorders gathered during ``generate``.

    A row ends at its first end-of-sequence id (``eos``, the model's generation config, or the
    tokenizer's) or at the first stop string, which is cut from the text and from the last
    token it overlaps; ``finish_reason`` is ``"stop"`` then and ``"length"`` otherwise. Each
    token's text is the piece it adds to the decoded answer, so the pieces concatenate to it.
    """
    tok = tokenizer
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
