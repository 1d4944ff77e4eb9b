"""benchmarks/gpu_check.py runs end to end with tiny shapes on CPU (the GPU run is manual)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_script_runs_tiny_on_cpu_and_every_path_checks_out():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--tiny"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "plain generate, batch 1" in out
    assert out.count("| True |") == 4  # two configs × two concurrency levels, all safe
    assert out.count(": ok") == 4 and "FAILED" not in out
