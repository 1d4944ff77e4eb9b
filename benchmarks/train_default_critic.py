"""Re-create the shipped critic (``core/inferenceguard/assets/default_critic``).

It is ``inferenceguard train-critic`` with its defaults — embedded SmolLM2-135M-Instruct,
the shipped cost probe and MiniLM relevance reward, 400 prompts from the built-in sets
(harmful: AdvBench 64, HarmBench test 48, StrongREJECT 56, MaliciousInstruct 32, two of
which StrongREJECT also has, kept once; benign: harmless Alpaca 96, XSTest safe 64,
MT-Bench 40), 8 samples per prompt (398 x 8 = 3,184 responses), blocks of 16 tokens, up
to 64 tokens, temperature 1.0, seed 0, 8 prompts in flight — on one torch
thread, so the arithmetic does not depend on the core count::

    HF_HUB_OFFLINE=1 python benchmarks/train_default_critic.py   # ~25-30 min, 2 quiet cores
    HF_HUB_OFFLINE=1 python benchmarks/train_default_critic.py --check  # compare, don't overwrite
    HF_HUB_OFFLINE=1 python benchmarks/train_default_critic.py --limit 4 --samples-per-prompt 4 \\
        --max-new-tokens 32 --out /tmp/critic-smoke   # 28 prompts end to end, ~3 min

Rollouts are cached under ``$INFERENCEGUARD_HOME/critic_rollouts/`` and resume after an
interruption; with the cache in place a rerun only retrains (a few minutes), and the
retrained weights are bit-identical. Re-collected rollouts have the same responses, costs
and rewards, but prompts in flight share batched forwards whose composition depends on
thread timing, so their hidden states can differ in the last float16 bits and the weights'
sha256 with them (``--in-flight 1`` makes the rollouts bit-reproducible, at ~2x the time);
``--check`` therefore prints the held-out metrics of both critics next to the hashes.
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

#: Held-out metrics compared by ``--check``.
CHECKED = ("auc_live", "auc_live_z_only", "reward_r2", "ece")


def _compare(new_dir: Path, shipped_dir: Path) -> bool:
    """Print both critics' hashes and test metrics; True when the weights are identical."""
    new = json.loads((new_dir / META_FILE).read_text())
    shipped = json.loads((shipped_dir / META_FILE).read_text())
    for key in CHECKED:
        old_value = shipped["metrics"].get("test", {}).get(key)
        print(
            f"test {key:<16} shipped {old_value!s:>8}  rebuilt {new['metrics']['test'].get(key)!s:>8}"
        )
    same = new["weights_sha256"] == shipped["weights_sha256"]
    print(f"shipped {shipped['weights_sha256']}\nrebuilt {new['weights_sha256']}")
    print("identical" if same else "DIFFERENT")
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Any other option is passed to `inferenceguard train-critic` (see its --help).",
    )
    parser.add_argument(
        "--check", action="store_true", help="train into a temp folder and compare sha256"
    )
    parser.add_argument("--out", default=None, help="critic folder (default: the shipped one)")
    parser.add_argument("--no-progress", action="store_true")
    args, extra = parser.parse_known_args(argv)
    target = default_critic_path()
    out = Path(tempfile.mkdtemp(prefix="critic-check-")) if args.check else target
    out = Path(args.out) if args.out and not args.check else out
    started = time.perf_counter()
    cli_args = ["train-critic", "--out", str(out), "--threads", "1", *extra]
    if args.no_progress:
        cli_args.append("--no-progress")
    print("running: inferenceguard " + " ".join(cli_args), flush=True)
    code = cli_main(cli_args)
    print(f"train-critic finished in {(time.perf_counter() - started) / 60:.1f} min")
    if code or not args.check:
        return code
    return 0 if _compare(out, target) else 1


if __name__ == "__main__":
    raise SystemExit(main())
