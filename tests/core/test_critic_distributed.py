"""Critic rollouts from two CPU processes under ``accelerate launch`` equal one process's.

Both runs are subprocesses with the same script and one torch thread each, so the only
difference is the number of ranks. The records carry the sha256 of every hidden-state
file, so equal ``index.jsonl`` files mean bit-identical rollouts. The ranks talk over the
loopback interface only (pytest-socket guards this process, not its children).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys

    import torch

    torch.set_num_threads(1)  # same arithmetic in every process, whatever the core count
    from inferenceguard import CostModel, LocalLM, RewardModel
    from inferenceguard.training.critic.rollouts import RolloutSettings, collect_rollouts, prompt_items

    model_dir, prompts, out = sys.argv[1:4]
    lm = LocalLM.from_pretrained(model_dir, device="cpu")
    cost = CostModel.from_callable(
        lambda p, r: min(1.0, len(r) / 40), threshold=0.5, id="length-cost"
    )
    reward = RewardModel.from_callable(lambda p, r: float(len(set(r.split()))), id="words")
    settings = RolloutSettings(samples_per_prompt=3, block_len=4, max_new_tokens=12, seed=5)
    collect_rollouts(prompt_items([prompts]), lm, cost, reward, settings, out, progress=False)
    from inferenceguard._distributed import process_info

    info = process_info()
    print(f"rank {info.rank}/{info.world_size} done", flush=True)
    """
)


def _accelerate() -> str | None:
    beside = Path(sys.executable).parent / "accelerate"
    return str(beside) if beside.exists() else shutil.which("accelerate")


def _port() -> int:
    # pytest-socket forbids asking the OS for a free port in-process; a pid-derived high
    # port keeps parallel test runs apart.
    return 20000 + os.getpid() % 20000


@pytest.fixture(scope="module")
def setup(tmp_path_factory, smollm2_tokenizer):
    from inferenceguard.testing import tiny_random_lm

    root = tmp_path_factory.mktemp("dist")
    lm = tiny_random_lm(smollm2_tokenizer)
    lm.model.save_pretrained(root / "tiny")
    smollm2_tokenizer.save_pretrained(root / "tiny")
    (root / "prompts.txt").write_text(
        "\n".join(f"Prompt {i}: say something about the number {i}." for i in range(7))
    )
    (root / "collect.py").write_text(SCRIPT)
    return root


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "MASTER_ADDR": "127.0.0.1",
            "GLOO_SOCKET_IFNAME": "lo",
        }
    )
    return env


def _run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.skipif(_accelerate() is None, reason="accelerate CLI not installed")
def test_two_cpu_processes_give_the_same_records_as_one(setup):
    root = setup
    args = [str(root / "tiny"), str(root / "prompts.txt")]
    assert "rank 0/1 done" in _run(
        [sys.executable, str(root / "collect.py"), *args, str(root / "one")]
    )
    # `accelerate launch --cpu --num_processes 2` starts a single process unless MPI is set
    # up; --multi_gpu goes through torchrun, and the rollouts pick gloo when CUDA is absent.
    flags = [
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_ip",
        "127.0.0.1",
    ]
    port = ["--main_process_port", str(_port())]
    out = _run([_accelerate(), *flags, *port, str(root / "collect.py"), *args, str(root / "two")])
    assert "rank 0/2 done" in out and "rank 1/2 done" in out
    one = (root / "one" / "index.jsonl").read_text()
    two = (root / "two" / "index.jsonl").read_text()
    records = [json.loads(line) for line in one.splitlines()]
    assert len(records) == 7 and len({r["prompt_id"] for r in records}) == 7
    assert one == two  # same prompts, order, texts, costs, rewards and hidden-file hashes
    assert not list((root / "two" / "parts").glob("*.jsonl"))  # rank 0 merged the parts
    for r in records:
        a = (root / "one" / r["hidden_file"]).read_bytes()
        assert a == (root / "two" / r["hidden_file"]).read_bytes()
