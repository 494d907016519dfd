"""``python -m cli serve``: serve a model over the OpenAI protocol (``backends.serve_openai``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from backends.serve_openai import create_app
from core.errors import ConfidantError


def main(argv: Sequence[str] | None = None) -> int:
    from backends.registry import BackendConfig, Backends

    p = argparse.ArgumentParser(
        prog="python -m cli serve",
        description="Serve a local model over the OpenAI protocol, log-probabilities included.",
    )
    p.add_argument("--model", default="tiny-random", help="hub id, local directory or tiny-random")
    p.add_argument("--served-model-name", default=None, help="the name clients ask for")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: automatic)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key",
        default=os.environ.get("CONFIDANT_SERVE_API_KEY"),
        help="require Authorization: Bearer <key> (env CONFIDANT_SERVE_API_KEY)",
    )
    args = p.parse_args(argv)
    import uvicorn

    try:
        lm = Backends(BackendConfig(model=args.model, device=args.device)).generator()
    except ConfidantError as exc:
        print(f"error: {exc}")
        return 2
    app = create_app(lm, model_name=args.served_model_name or args.model, api_key=args.api_key)
    print(f"Serving {args.model} at http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
