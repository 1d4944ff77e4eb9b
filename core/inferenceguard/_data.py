"""Where the built-in prompt sets live, and the per-prompt seed every offline job uses.

Lookup order for a data file (relative path such as ``advbench/harmful_behaviors.csv``):

1. ``$INFERENCEGUARD_DATA``, when set (a folder with the same layout);
2. the package data shipped in the wheel (``inferenceguard/data``: sets whose license
   allows redistribution);
3. the repository's ``data/`` folder, for a source checkout (non-commercial or unlicensed
   sets that the wheel does not carry).

Nothing outside the package or its repository is ever read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import ConfigError

__all__ = ["PACKAGE_DATA", "REPO_DATA", "data_path", "data_roots", "prompt_seed"]

#: Prompt sets shipped inside the package (and the wheel).
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
#: Prompt sets kept in the source repository only (``<repo>/data``).
REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def data_roots() -> list[Path]:
    """The folders searched for data files, in order (only those that exist)."""
    roots: list[Path] = []
    env = os.environ.get("INFERENCEGUARD_DATA")
    if env:
        if not Path(env).is_dir():
            raise ConfigError(
                f"INFERENCEGUARD_DATA={env!r} is not a folder.",
                hint="point it at a folder laid out like inferenceguard/data, or unset it.",
            )
        roots.append(Path(env))
    roots += [p for p in (PACKAGE_DATA, REPO_DATA) if p.is_dir()]
    return roots


def data_path(relative: str | Path) -> Path:
    """The file ``relative`` from the first data folder that has it.

    Raises:
        ConfigError: no data folder holds it (the message says which were searched).
    """
    roots = data_roots()
    for root in roots:
        candidate = root / relative
        if candidate.exists():
            return candidate
    searched = ", ".join(str(r) for r in roots) or "none"
    raise ConfigError(
        f"The data file {str(relative)!r} is in none of the data folders ({searched}).",
        hint="the non-redistributable sets (alpaca_harmless, pku_saferlhf, malicious_instruct) "
        "are in the repository's data/ folder, not in the wheel: set INFERENCEGUARD_DATA to a "
        "copy of it, or pass your own prompt file.",
    )


def prompt_seed(seed: int, prompt_key: str) -> int:
    """The sampling seed of one prompt: a hash of the run seed and the prompt's key.

    Every strategy, process and rank sees the same seed for a prompt (63 bits, so it fits
    ``torch.Generator.manual_seed``).
    """
    digest = hashlib.sha256(f"{seed}:{prompt_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)
