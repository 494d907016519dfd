"""``python -m cli serve-encoders``: serve an NLI cross-encoder and a sentence embedder over
text-embeddings-inference's ``/predict`` and ``/info``, vLLM's ``/classify`` and the OpenAI
protocol's ``/v1/embeddings`` (``backends.serve_encoders``).

python -m cli serve-encoders --nli-model tiny-random-nli --port 8100
python -m cli serve-encoders --nli-model microsoft/deberta-large-mnli --embedding-model \
    sentence-transformers/all-MiniLM-L6-v2 --host 0.0.0.0 --api-key "$KEY"
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from cli.common import run_cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cli serve-encoders",
        description="Serve an NLI model and a sentence embedder over HTTP (TEI, vLLM and "
        "OpenAI protocols).",
    )
    p.add_argument(
        "--nli-model",
        default=None,
        help="NLI cross-encoder: a directory, a hub id or tiny-random-nli (default: none)",
    )
    p.add_argument(
        "--embedding-model",
        default=None,
        help="sentence-transformers model (default: none; all-MiniLM-L6-v2 works offline)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: automatic)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument(
        "--api-key",
        default=os.environ.get("CONFIDANT_SERVE_API_KEY"),
        help="require Authorization: Bearer <key> (env CONFIDANT_SERVE_API_KEY)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI; returns the exit code (0 done, 2 a user error, printed without traceback)."""
    return run_cli(lambda a: _serve(_parser().parse_args(a)), argv)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from backends.embeddings import SentenceEmbedder
    from backends.nli import NLIModel
    from backends.serve_encoders import create_encoder_app
    from backends.tiny import TINY_NLI_ID, tiny_model_dir
    from core.errors import ConfidantError

    if not args.nli_model and not args.embedding_model:
        raise ConfidantError("give --nli-model, --embedding-model or both")
    nli = None
    if args.nli_model == TINY_NLI_ID:
        nli = NLIModel(str(tiny_model_dir(TINY_NLI_ID)), display_name=TINY_NLI_ID, device="cpu")
    elif args.nli_model:
        nli = NLIModel(args.nli_model, device=args.device)
    embedder = (
        SentenceEmbedder(args.embedding_model, device=args.device)
        if (args.embedding_model)
        else None
    )
    app = create_encoder_app(nli, embedder, api_key=args.api_key)
    print(f"Serving encoders at http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
