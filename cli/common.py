"""Shared command-line conventions of ``python -m cli``: the model flags (one set of names and
defaults, from ``BackendConfig.from_env()``), the seed flags' type (``seed_arg``), and user
errors printed as ``error: …`` without a traceback (exit code 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from core.errors import ConfidantError
from core.secrets import redact


def positive_int(text: str) -> int:
    """The ``type=`` of a flag that takes a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def seed_arg(text: str) -> int:
    """The ``type=`` of a seed flag: a whole number from 0 to ``backends.base.MAX_SEED``,
    refused with the same message as the app's seed boxes."""
    from backends.base import check_seed

    try:
        return check_seed(text)
    except ConfidantError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_model_arguments(
    parser: argparse.ArgumentParser,
    *,
    server: bool = True,
    embedding: bool = True,
    nli: bool = True,
) -> None:
    """The "models" flags: ``--model`` and ``--device`` always; ``--openai-base-url``,
    ``--embedding-model`` and ``--nli-model`` unless the command has no use for them. Defaults
    come from the environment (``CONFIDANT_MODEL``, ``CONFIDANT_DEVICE``, ...), as in the app.
    """
    from backends.registry import BackendConfig

    env = BackendConfig.from_env()
    g = parser.add_argument_group("models")
    g.add_argument(
        "--model",
        default=env.model,
        help="smollm2-135m (the embedded real model, prepared offline), a hub id, a local "
        "directory, or tiny-random (default: %(default)s; env CONFIDANT_MODEL)",
    )
    if server:
        g.add_argument(
            "--openai-base-url",
            default=env.openai_base_url,
            help="OpenAI-compatible server (key from CONFIDANT_OPENAI_API_KEY)",
        )
        g.add_argument(
            "--concurrency",
            type=int,
            default=env.concurrency,
            help="requests in flight at once to that server (default 16; env "
            "CONFIDANT_CONCURRENCY)",
        )
    if embedding:
        g.add_argument(
            "--embedding-model",
            default=env.embedding_model,
            help="sentence-embedding model (default: %(default)s)",
        )
        g.add_argument(
            "--embedding-base-url",
            default=env.embedding_base_url,
            help="take embeddings from this server's /embeddings (vLLM, TEI, OpenAI), e.g. "
            "http://127.0.0.1:8100/v1; --embedding-model is the name there (env "
            "CONFIDANT_EMBEDDING_BASE_URL; key from CONFIDANT_EMBEDDING_API_KEY)",
        )
    if nli:
        g.add_argument(
            "--nli-model",
            default=env.nli_model,
            help="NLI model (default: microsoft/deberta-large-mnli when it can be loaded, else "
            "entailment by embedding similarity; tiny-random-nli with tiny-random)",
        )
        g.add_argument(
            "--nli-base-url",
            default=env.nli_base_url,
            help="take entailment from this server: text-embeddings-inference (/predict) or "
            "vLLM (/classify); --nli-model is the name there (env CONFIDANT_NLI_BASE_URL; key "
            "from CONFIDANT_NLI_API_KEY)",
        )
        g.add_argument(
            "--nli-labels",
            default=env.nli_labels,
            help="the served NLI model's class names in output order, e.g. "
            "contradiction,neutral,entailment (needed with vLLM; env CONFIDANT_NLI_LABELS)",
        )
        g.add_argument(
            "--nli-pair-separator",
            default=env.nli_pair_separator,
            help="with vLLM: the text between premise and hypothesis, the model's separator "
            "('[SEP]' for DeBERTa; env CONFIDANT_NLI_PAIR_SEPARATOR)",
        )
    g.add_argument(
        "--device",
        default=env.device,
        help="cpu, cuda or mps (default: automatic; env CONFIDANT_DEVICE)",
    )


def backends_from_args(args: argparse.Namespace) -> Any:
    """The ``backends.registry.Backends`` the model flags name (flags a command lacks take
    ``BackendConfig``'s defaults)."""
    from backends.registry import BackendConfig, Backends

    defaults = BackendConfig()
    return Backends(
        BackendConfig(
            model=args.model,
            openai_base_url=getattr(args, "openai_base_url", None),
            embedding_model=getattr(args, "embedding_model", defaults.embedding_model),
            nli_model=getattr(args, "nli_model", None),
            device=getattr(args, "device", None),
            concurrency=getattr(args, "concurrency", None),
            nli_base_url=getattr(args, "nli_base_url", None),
            nli_labels=getattr(args, "nli_labels", None),
            nli_pair_separator=getattr(args, "nli_pair_separator", None),
            embedding_base_url=getattr(args, "embedding_base_url", None),
        )
    )


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run ``main``; a ConfidantError (bad input, a model that will not load) is printed as
    ``error: …`` and exits with code 2."""
    try:
        return main(argv)
    except ConfidantError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
