"""The wheel holds everything a user needs: installed alone into a folder, it runs.

Builds the wheel from this checkout (offline: no build isolation, hatchling comes from the
dev extra), installs it with ``--no-deps`` into a temporary folder, and runs a smoke test
in a fresh interpreter whose ``sys.path`` starts with that folder, so the installed copy,
not the source tree, is what gets imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SMOKE = r"""
import json, sys
import inferenceguard, langchain_inferenceguard, llamaindex_inferenceguard
from inferenceguard._data import data_path
from inferenceguard.critic import read_critic_metadata
from inferenceguard.critic.io import default_critic_path
from inferenceguard.evaluation.tasks import load_prompt_set
from inferenceguard.scorers.defaults import load_default_cost_model

out = {
    "file": inferenceguard.__file__,
    "adapters": [langchain_inferenceguard.__file__, llamaindex_inferenceguard.__file__],
    "advbench": len(load_prompt_set("advbench", limit=3)),
    "xstest": str(data_path("xstest/xstest_prompts.csv")),
    "license": str(data_path("LICENSES/XSTest-CC-BY-4.0.txt")),
    "critic": str(default_critic_path()) if read_critic_metadata(default_critic_path()) else "",
    "cost": float(load_default_cost_model().score(["How do I bake bread?"], ["Mix flour and water."])[0]),
}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("inferenceguard-*.whl")
    return built


def test_wheel_lists_the_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "inferenceguard/py.typed",
        "inferenceguard/assets/default_cost/head.safetensors",
        "inferenceguard/assets/default_cost/metadata.json",
        "inferenceguard/assets/default_gate/gate.safetensors",
        "inferenceguard/assets/default_gate/metadata.json",
        "inferenceguard/training/cost_probe/templates/gate_prompts.json",
        "inferenceguard/assets/default_judge/judge.safetensors",
        "inferenceguard/assets/default_judge/metadata.json",
        "inferenceguard/training/cost_probe/templates/judge_responses.json",
        "inferenceguard/assets/default_critic/critic.safetensors",
        "inferenceguard/assets/default_critic/critic.json",
        "inferenceguard/data/advbench/harmful_behaviors.csv",
        "inferenceguard/data/LICENSES/ToxiGen-MIT-and-CDLA-Permissive-2.0.txt",
        "langchain_inferenceguard/__init__.py",
        "llamaindex_inferenceguard/__init__.py",
    ):
        assert needed in names, f"{needed} is missing from {wheel.name}"
    # Sets whose license does not allow redistribution stay out of the wheel.
    assert not any(n.startswith("inferenceguard/data/alpaca_harmless/") for n in names)
    assert not any(n.startswith("inferenceguard/data/pku_saferlhf/") for n in names)
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)


def test_installed_wheel_runs_from_its_own_folder(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    env.pop("INFERENCEGUARD_DATA", None)
    proc = subprocess.run(
        [sys.executable, "-c", SMOKE],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).is_relative_to(target)
    assert all(Path(f).is_relative_to(target) for f in out["adapters"])
    assert Path(out["xstest"]).is_relative_to(target)
    assert Path(out["license"]).is_relative_to(target)
    assert out["advbench"] == 3
    assert Path(out["critic"]).is_relative_to(target)
    assert 0.0 <= out["cost"] <= 1.0
