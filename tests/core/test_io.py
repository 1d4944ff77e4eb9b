"""Atomic writes: a failed write never leaves a half-written file behind."""

from __future__ import annotations

import os

import pytest

from inferenceguard._distributed import append_jsonl, read_jsonl
from inferenceguard._io import atomic_dir, atomic_write_text


def test_atomic_write_replaces_whole_file_with_normal_permissions(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_directory_write_leaves_the_old_one_untouched(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "weights").write_text("half")
        raise RuntimeError("crash mid-write")
    assert (target / "weights").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_jsonl_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as fh:
        fh.write('{"a": 2')  # a crash in the middle of a write
    assert list(read_jsonl([path, tmp_path / "missing.jsonl"])) == [{"a": 1}]
    append_jsonl(path, {"a": 3})  # a resumed run appends on a fresh line
    assert list(read_jsonl([path])) == [{"a": 1}, {"a": 3}]
