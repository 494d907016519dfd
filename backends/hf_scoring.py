"""Teacher-forced scoring for :class:`backends.hf.HFCausalLM`: ``score``, ``score_tree`` and
``choice_probs``.

log p(continuation | prompt) = Σ_j log p(c_j | prompt, c_<j), read from one forward pass with
the continuation fed as input. The prompt is run once and shared by every row; rows are packed
as a token trie (shared beginnings are one position) under a 4-D attention mask, or run as a
right-padded batch when the model's attention cannot take a custom mask.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from transformers import DynamicCache

from backends.base import ContinuationScore
from backends.gpu import gpu


class HFScoringMixin:
    """The scoring methods of :class:`backends.hf.HFCausalLM`.

    The host class provides ``model`` and ``tokenizer`` (loaded on first use), ``_encode(text)``
    (token ids without special tokens), ``_prompt_ids(prompt, chat)`` (the prompt's ids, chat
    template applied when ``chat``) and ``_run_lock`` (one forward at a time).
    """

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
