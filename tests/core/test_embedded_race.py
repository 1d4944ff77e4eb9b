"""The embedded model's one-time conversion when several processes start at once.

Real processes run the real :func:`embedded_lm_dir` (lock, re-check, atomic rename) into
an empty ``$INFERENCEGUARD_HOME``; only the 30-second dequantisation is replaced by a fake
that takes a moment, counts itself and writes the two files a finished folder has.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inferenceguard import _embedded

# Each child replaces _convert and calls the real embedded_lm_dir().
CHILD = r"""
import os, time
from inferenceguard import _embedded
from inferenceguard._io import atomic_dir

def fake_convert(target):
    with open(os.environ["COUNT_FILE"], "a") as fh:
        fh.write(f"{os.getpid()}\n")
    with atomic_dir(target) as tmp:
        (tmp / "model.safetensors").write_bytes(b"w" * 4096)
        time.sleep(0.5)  # a slow write: the others must wait, not read half of it
        (tmp / "tokenizer.json").write_text("{}")

_embedded._convert = fake_convert
if os.environ.get("CRASH"):
    def crash(target):
        with atomic_dir(target) as tmp:
            (tmp / "model.safetensors").write_bytes(b"half")
            raise RuntimeError("killed mid-conversion")
    _embedded._convert = crash
print(_embedded.embedded_lm_dir())
"""


def _start(home: Path, count: Path, **env: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "INFERENCEGUARD_HOME": str(home), "COUNT_FILE": str(count), **env}
    environ["PYTHONPATH"] = os.pathsep.join(sys.path)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD], env=environ, stdout=subprocess.PIPE, text=True
    )


def test_processes_starting_together_convert_once(tmp_path):
    home, count = tmp_path / "home", tmp_path / "count"
    children = [_start(home, count) for _ in range(3)]
    outputs = [child.communicate(timeout=120)[0].strip() for child in children]
    assert [child.returncode for child in children] == [0, 0, 0]
    target = home / "models" / "SmolLM2-135M-Instruct"
    assert outputs == [str(target)] * 3
    assert len(count.read_text().split()) == 1  # one conversion, the others waited for it
    assert (target / "model.safetensors").read_bytes() == b"w" * 4096
    assert (target / "tokenizer.json").read_text() == "{}"
    leftovers = sorted(p.name for p in target.parent.iterdir() if p != target)
    assert leftovers == [".SmolLM2-135M-Instruct.lock"]  # no temp folders


def test_an_interrupted_conversion_leaves_nothing_and_the_next_one_converts(tmp_path):
    home, count = tmp_path / "home", tmp_path / "count"
    crashed = _start(home, count, CRASH="1")
    crashed.communicate(timeout=120)
    assert crashed.returncode != 0
    models = home / "models"
    assert [p.name for p in models.iterdir()] == [".SmolLM2-135M-Instruct.lock"]
    again = _start(home, count)
    assert again.communicate(timeout=120)[0].strip() == str(models / "SmolLM2-135M-Instruct")
    assert len(count.read_text().split()) == 1


def test_an_incomplete_folder_is_replaced_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERENCEGUARD_HOME", str(tmp_path))
    target = tmp_path / "models" / "SmolLM2-135M-Instruct"
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"old")  # no tokenizer.json
    converted: list[Path] = []

    def fake_convert(path: Path) -> None:
        assert not path.exists()  # the stale folder is gone before the rename
        converted.append(path)
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"new")
        (path / "tokenizer.json").write_text("{}")

    monkeypatch.setattr(_embedded, "_convert", fake_convert)
    assert _embedded.embedded_lm_dir() == target
    assert converted == [target]
    assert (target / "model.safetensors").read_bytes() == b"new"
    assert _embedded.embedded_lm_dir() == target and len(converted) == 1  # complete: reused


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_the_lock_is_held_during_the_conversion(tmp_path, monkeypatch):
    import fcntl

    monkeypatch.setenv("INFERENCEGUARD_HOME", str(tmp_path))
    lock = tmp_path / "models" / ".SmolLM2-135M-Instruct.lock"

    def fake_convert(path: Path) -> None:
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # a second process would wait here
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"x")
        (path / "tokenizer.json").write_text("{}")

    monkeypatch.setattr(_embedded, "_convert", fake_convert)
    _embedded.embedded_lm_dir()
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released afterwards
    finally:
        os.close(fd)
