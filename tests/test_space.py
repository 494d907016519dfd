"""Hugging Face Space readiness: the README front matter, the database path on a Space, and
ZeroGPU's ``spaces.GPU`` on the compute functions (a no-op elsewhere)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from huggingface_hub import SpaceCard, metadata_load

from backends import gpu as gpu_module
from backends.gpu import draw_seed, generation_seconds, gpu, zero_gpu_enabled
from store.db import Store, default_db_path

ROOT = Path(__file__).resolve().parent.parent


def pinned(package: str) -> str:
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    found = re.search(rf"^{re.escape(package)}==([^\s#]+)", text, flags=re.MULTILINE)
    assert found, f"{package} is not pinned in requirements.txt"
    return found.group(1)


# -- README front matter ------------------------------------------------------------------------


def test_readme_front_matter_is_a_valid_gradio_space_config():
    meta = metadata_load(ROOT / "README.md")
    assert meta, "README.md has no YAML front matter"
    card = SpaceCard.load(ROOT / "README.md")
    data = card.data
    assert data.sdk == "gradio"
    assert str(data.sdk_version) == pinned("gradio")
    assert data.app_file and (ROOT / data.app_file).is_file()
    assert re.fullmatch(r"3\.\d+", str(data.python_version)), data.python_version
    assert meta["title"] and len(meta.get("short_description", "")) <= 60
    # The Space installs what requirements.txt lists; packages.txt (apt) must exist if named.
    assert (ROOT / "requirements.txt").is_file()


def test_sdk_version_is_the_installed_gradio():
    import gradio

    assert gradio.__version__ == pinned("gradio")


# -- database path ------------------------------------------------------------------------------


@pytest.fixture
def no_space_env(monkeypatch, tmp_path):
    for name in ("CONFIDANT_DB", "SYSTEM", "SPACE_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return monkeypatch


def test_database_goes_to_the_space_volume_when_one_is_mounted(no_space_env, tmp_path):
    volume = tmp_path / "data"
    volume.mkdir()
    no_space_env.setattr("store.db.SPACE_VOLUME", str(volume))
    no_space_env.setenv("SYSTEM", "spaces")
    assert default_db_path() == volume / "confidant.db"
    store = Store()
    try:
        assert store.path == volume / "confidant.db"
        # On a bucket mount: rollback journal, exclusive locking, full sync.
        mode = store.read(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0])
        locking = store.read(lambda db: db.execute("PRAGMA locking_mode").fetchone()[0])
        assert (mode, locking) == ("delete", "exclusive")
    finally:
        store.close()


def test_space_without_a_volume_falls_back_to_the_user_data_dir(no_space_env, tmp_path):
    no_space_env.setattr("store.db.SPACE_VOLUME", str(tmp_path / "not-mounted"))
    no_space_env.setenv("SPACE_ID", "someone/confidant")
    assert default_db_path() == tmp_path / "xdg" / "confidant" / "confidant.db"


def test_off_spaces_the_volume_is_ignored_and_confidant_db_wins(no_space_env, tmp_path):
    volume = tmp_path / "data"
    volume.mkdir()
    no_space_env.setattr("store.db.SPACE_VOLUME", str(volume))
    assert default_db_path() == tmp_path / "xdg" / "confidant" / "confidant.db"
    no_space_env.setenv("SYSTEM", "spaces")
    no_space_env.setenv("CONFIDANT_DB", str(tmp_path / "chosen.db"))
    assert default_db_path() == tmp_path / "chosen.db"


def test_off_spaces_the_store_uses_wal(no_space_env, tmp_path):
    store = Store(tmp_path / "x.db")
    try:
        assert store.read(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    finally:
        store.close()


# -- ZeroGPU ------------------------------------------------------------------------------------


def fake_spaces(calls: list) -> types.ModuleType:
    """A stand-in for the ``spaces`` package: GPU(fn, duration=, size=) records each call."""
    module = types.ModuleType("spaces")

    def GPU(fn, duration=None, size=None):  # noqa: N802 - the real name
        def run(*args, **kwargs):
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            calls.append({"fn": fn.__name__, "duration": seconds, "size": size, "kwargs": kwargs})
            return fn(*args, **kwargs)

        return run

    module.GPU = GPU
    return module


def test_gpu_is_a_no_op_without_zero_gpu(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    calls: list = []
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces(calls))

    def work(x):
        return x + 1

    assert not zero_gpu_enabled()
    assert gpu(duration=10)(work) is work


def test_gpu_is_a_no_op_when_spaces_is_not_installed_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setitem(sys.modules, "spaces", None)  # makes ``import spaces`` fail

    def work(x):
        return x

    assert zero_gpu_enabled()
    assert gpu(duration=10)(work) is work
    assert "spaces package is missing" in caplog.text


@pytest.mark.parametrize("value, on", [("true", True), ("1", True), ("", False), ("0", False)])
def test_zero_gpu_flag_follows_the_spaces_package_rule(monkeypatch, value, on):
    monkeypatch.setenv("SPACES_ZERO_GPU", value)
    assert zero_gpu_enabled() is on


class Streamer:
    def __init__(self):
        self.ended = False

    def end(self):
        self.ended = True


def test_on_zero_gpu_spaces_gpu_wraps_the_function(monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    calls: list = []
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces(calls))
    prepared = []

    def work(x, *, streamer=None):
        assert streamer is None, "the streamer must stay in the app process"
        return x * 2

    wrapped = gpu(
        duration=lambda x, **kw: 5.0 * x,
        size="xlarge",
        prepare=lambda x, **kw: prepared.append((x, sorted(kw))),
    )(work)
    assert wrapped is not work and wrapped.__name__ == "work"
    streamer = Streamer()
    assert wrapped(3, streamer=streamer) == 6
    assert streamer.ended
    assert prepared == [(3, ["streamer"])]
    assert calls == [{"fn": "work", "duration": 15.0, "size": "xlarge", "kwargs": {}}]


def test_generation_seconds_and_draw_seed():
    from backends.base import SamplingParams

    class Model:
        max_batch = 64

    small = generation_seconds(Model(), ["q"], SamplingParams(n=1, max_new_tokens=16))
    big = generation_seconds(Model(), ["q"] * 10, SamplingParams(n=64, max_new_tokens=1024))
    assert 30.0 <= small < big <= 240.0
    params = SamplingParams(seed=None)
    draw_seed(Model(), ["q"], params)
    assert isinstance(params.seed, int)
    kept = SamplingParams(seed=7)
    draw_seed(Model(), ["q"], kept)
    assert kept.seed == 7


def test_hf_compute_entry_points_are_plain_functions_off_zero_gpu():
    from backends.hf import HFCausalLM

    assert not zero_gpu_enabled()
    for name in ("sample_batch", "score_tree"):
        fn = getattr(HFCausalLM, name)
        owner = "HFScoringMixin" if name == "score_tree" else "HFCausalLM"
        assert fn.__qualname__ == f"{owner}.{name}" and not hasattr(fn, "__wrapped__")
    assert gpu_module.__name__ == "backends.gpu"


FAKE_SPACES = """
import sys
TORCH_LOADED_FIRST = "torch" in sys.modules
DECORATED = []
CALLS = []

def GPU(fn, duration=None, size=None):
    DECORATED.append(fn.__name__)

    def run(*args, **kwargs):
        seconds = duration(*args, **kwargs) if callable(duration) else duration
        CALLS.append((fn.__name__, seconds, sorted(kwargs)))
        return fn(*args, **kwargs)

    return run
"""

ZERO_GPU_SCRIPT = """
import app  # imports backends.gpu, hence spaces, before anything imports torch
import spaces
assert not spaces.TORCH_LOADED_FIRST, "torch was imported before spaces"
from transformers import TextIteratorStreamer
from backends.base import SamplingParams
from backends.hf import HFCausalLM
from backends.tiny import build_tiny_causal_lm
assert sorted(spaces.DECORATED) == ["sample_batch", "score_tree"], spaces.DECORATED
lm = HFCausalLM(str(build_tiny_causal_lm(sys.argv[1]))).load()
params = SamplingParams(n=2, temperature=1.0, max_new_tokens=4, seed=None)
answers = lm.sample("Is it a cat?", params)
assert len(answers) == 2 and isinstance(params.seed, int)
streamer = TextIteratorStreamer(lm.tokenizer, skip_prompt=True, timeout=5)
lm.greedy("Is it a cat?", 4, streamer=streamer)
assert "".join(streamer) == ""  # ended in the app process, so iterating it does not hang
scores = lm.score("Is it a cat?", ["Yes", "No"])
assert len(scores) == 2
names = [c[0] for c in spaces.CALLS]
assert names == ["sample_batch", "sample_batch", "score_tree"], spaces.CALLS
assert all(30 <= c[1] <= 240 for c in spaces.CALLS[:2]) and spaces.CALLS[2][1] == 60
assert all("streamer" not in c[2] for c in spaces.CALLS), spaces.CALLS
print("ZERO-GPU-OK")
"""


def test_on_zero_gpu_the_hf_backend_runs_through_spaces_gpu(tmp_path):
    """In a fresh process with ZeroGPU's flag and a stand-in ``spaces`` package: the app
    imports ``spaces`` before torch, HFCausalLM.sample_batch/score_tree go through
    ``spaces.GPU``, seeds are drawn in the app process and streamers are ended there."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "spaces.py").write_text(FAKE_SPACES, encoding="utf-8")
    env = dict(os.environ)
    env.update(
        SPACES_ZERO_GPU="true",
        PYTHONPATH=os.pathsep.join([str(fake), str(ROOT)]),
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    done = subprocess.run(
        [sys.executable, "-c", "import sys\n" + textwrap.dedent(ZERO_GPU_SCRIPT), str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0 and "ZERO-GPU-OK" in done.stdout, done.stderr[-3000:]
