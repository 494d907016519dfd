"""Shared command-line conventions: model flags, and user errors printed without a traceback
(exit code 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from core.errors import ConfidantError


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from backends.registry import BackendConfig

    env = BackendConfig.from_env()
    g = parser.add_argument_group("models")
    g.add_argument("--model", default=env.model, help="hub id, local directory, or tiny-random")
    g.add_argument(
        "--openai-base-url",
        default=env.openai_base_url,
        help="OpenAI-compatible server (key from CONFIDANT_OPENAI_API_KEY)",
    )
    g.add_argument("--embedding-model", default=env.embedding_model)
    g.add_argument("--nli-model", default=env.nli_model)
    g.add_argument("--device", default=env.device)


def backends_from_args(args: argparse.Namespace):
    from backends.registry import BackendConfig, Backends

    return Backends(
        BackendConfig(
            model=args.model,
            openai_base_url=args.openai_base_url,
            embedding_model=args.embedding_model,
            nli_model=args.nli_model,
            device=args.device,
        )
    )


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run ``main``; a ConfidantError (bad input, a model that will not load) is printed as
    ``error: …`` and exits with code 2."""
    try:
        return main(argv)
    except ConfidantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
