"""The runtime never imports the offline training code (it only loads what training built)."""

from __future__ import annotations

import json
import subprocess
import sys

RUNTIME = [
    "inferenceguard",
    "inferenceguard.guard",
    "inferenceguard.lm",
    "inferenceguard.search",
    "inferenceguard.scorers",
    "inferenceguard.scorers.defaults",
    "inferenceguard.scorers.embedding_probe",
    "inferenceguard.critic",
    "inferenceguard.server",
    "inferenceguard.cli",
    "langchain_inferenceguard",
    "llamaindex_inferenceguard",
]


def test_runtime_packages_do_not_import_training() -> None:
    # A fresh interpreter: this test process has long imported the training package.
    script = (
        "import importlib, json, sys\n"
        f"for name in {RUNTIME!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        # Only an optional extra (server, adapters) may be missing, never our own code.\n"
        "        if (exc.name or '').split('.')[0] in {'inferenceguard', name.split('.')[0]}:\n"
        "            raise\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('inferenceguard'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "inferenceguard.guard" in loaded  # the imports above did run
    assert not [m for m in loaded if m.startswith("inferenceguard.training")]
