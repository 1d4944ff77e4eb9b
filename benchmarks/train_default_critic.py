"""Re-create the shipped critic (``core/inferenceguard/assets/default_critic``).

It is ``inferenceguard train-critic`` with its defaults — embedded SmolLM2-135M-Instruct,
the shipped cost probe and MiniLM relevance reward, the first 48 prompts of AdvBench
behaviours, harmless Alpaca and MT-Bench (first turns) from the built-in prompt sets, 8 samples per
prompt, blocks of 16 tokens, up to 64 tokens, temperature 1.0, seed 0 — on one torch
thread, so the arithmetic (and the weights' sha256) does not depend on the core count::

    HF_HUB_OFFLINE=1 python benchmarks/train_default_critic.py          # ~15-25 min on 2 cores
    HF_HUB_OFFLINE=1 python benchmarks/train_default_critic.py --check  # compare, don't overwrite

Rollouts are cached under ``$INFERENCEGUARD_HOME/critic_rollouts/`` and resume after an
interruption; with the cache in place a rerun only retrains (about a minute).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "core") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO / "core"))

from inferenceguard.cli import main as cli_main  # noqa: E402
from inferenceguard.critic.io import META_FILE, default_critic_path  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="train into a temp folder and compare sha256"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    target = default_critic_path()
    out = Path(tempfile.mkdtemp(prefix="critic-check-")) if args.check else target
    started = time.perf_counter()
    cli_args = ["train-critic", "--out", str(out), "--threads", "1"]
    if args.no_progress:
        cli_args.append("--no-progress")
    code = cli_main(cli_args)
    print(f"train-critic finished in {(time.perf_counter() - started) / 60:.1f} min")
    if code or not args.check:
        return code
    new = json.loads((out / META_FILE).read_text())["weights_sha256"]
    shipped = json.loads((target / META_FILE).read_text())["weights_sha256"]
    print(f"shipped {shipped}\nrebuilt {new}\n{'identical' if new == shipped else 'DIFFERENT'}")
    return 0 if new == shipped else 1


if __name__ == "__main__":
    raise SystemExit(main())
