"""Every cookbook example runs in ``--tiny`` mode and prints what it promises.

Each script runs as a user would run it (``python cookbook/<name>.py --tiny``, in a
subprocess), on the tiny random model: the same code path as the default mode, only the
model construction differs. The scripts start together (as many at a time as there are
CPUs), each test waits for its own, so the module takes about as long as the slowest few
scripts rather than their sum.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
COOKBOOK = ROOT / "cookbook"
#: `make demo` runs demo.py on the real models (1-3 min); it has no tiny mode by design.
NOT_TINY = {"demo.py"}
TIMEOUT_S = 300


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def examples() -> list[str]:
    """Every runnable example: ``cookbook/*.py`` except helpers (``_*.py``) and the demo."""
    return sorted(
        p.name
        for p in COOKBOOK.glob("*.py")
        if not p.name.startswith("_") and p.name not in NOT_TINY
    )


def _run(script: str, args: list[str]) -> Run:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",  # tiny models: one thread each, several scripts at once
        "PYTHONIOENCODING": "utf-8",
    }
    proc = subprocess.run(
        [sys.executable, str(COOKBOOK / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT_S,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Run]]]:
    """Start every example at once; ``runs[name].result()`` waits for that one."""
    work = tmp_path_factory.mktemp("cookbook")
    extra_args = {  # keep written files under pytest's temp folder
        "train_your_critic.py": ["--out", str(work / "critic")],
        "evaluate_your_prompts.py": ["--out", str(work / "eval")],
    }
    # The two slowest first, so that the others fill the remaining CPUs meanwhile.
    order = sorted(examples(), key=lambda name: name not in extra_args)
    pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1))
    futures = {
        name: pool.submit(_run, name, ["--tiny", *extra_args.get(name, [])]) for name in order
    }
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def output(runs: dict[str, Future[Run]], name: str) -> str:
    """The script's stdout, after checking that it succeeded."""
    run = runs[name].result()
    assert run.returncode == 0, f"{name} failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    assert "Traceback" not in run.stderr, run.stderr[-5000:]
    return run.stdout


# --------------------------------------------------------------------------- static checks


@pytest.mark.parametrize("script", examples())
def test_header_says_what_how_and_how_long(script: str) -> None:
    doc = ast.get_docstring(ast.parse((COOKBOOK / script).read_text(encoding="utf-8")))
    assert doc, f"{script} has no header docstring"
    assert "What it shows" in doc
    assert f"python cookbook/{script}" in doc and "--tiny" in doc
    assert "Time on CPU" in doc


def test_readme_lists_every_example() -> None:
    readme = (COOKBOOK / "README.md").read_text(encoding="utf-8")
    for script in [*examples(), *NOT_TINY]:
        assert f"cookbook/{script}" in readme, f"{script} is missing from cookbook/README.md"


def test_every_example_is_checked_below() -> None:
    """A new example needs assertions on its output here, not only a smoke run."""
    checked = {
        "langchain_lcel_chain.py",
        "langchain_agent_tools.py",
        "langgraph_agent.py",
        "llamaindex_rag.py",
        "llamaindex_agent.py",
        "custom_cost_and_reward.py",
        "train_your_critic.py",
        "evaluate_your_prompts.py",
    }
    assert set(examples()) == checked


# --------------------------------------------------------------------------- outputs


def test_tiny_mode_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("cookbook_common", COOKBOOK / "_common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    monkeypatch.delenv(common.TINY_ENV, raising=False)
    assert common.parse_args(None, []).tiny is False
    assert common.parse_args(None, ["--tiny"]).tiny is True
    assert torch.get_num_threads() == 1  # tiny forwards: one thread
    monkeypatch.setenv(common.TINY_ENV, "1")
    assert common.parse_args(None, []).tiny is True


def test_langchain_lcel_chain_streams_and_reports(runs) -> None:
    out = output(runs, "langchain_lcel_chain.py")
    assert out.count("Q: ") == 2
    reports = [line for line in out.splitlines() if line.startswith("[safety report]")]
    assert len(reports) == 2 and all("safe=True" in line for line in reports)
    assert out.count("[z trace]") == 2


def _check_agent(out: str) -> None:
    benign, harmful = out.split("user (benign)")[1].split("user (harmful)")
    assert "model  -> tool call get_weather({'city': 'Paris'})" in benign
    assert "tool   -> Sunny, 21 °C in Paris." in benign
    assert "answer -> 'It is sunny in Paris today, around 21 °C.'" in benign
    assert "SERVED" in benign
    # The harmful call went over budget: never returned, so web_search never ran.
    assert "BLOCKED" in harmful and "-> tool call" not in harmful
    assert "[safety;" in harmful and "exhausted=True" in harmful
    assert "answer -> \"I'm sorry, but I can't help with that.\"" in harmful
    assert out.splitlines()[-1] == "tools that actually ran: [\"get_weather('Paris')\"]"


def test_langchain_agent_blocks_the_harmful_tool_call(runs) -> None:
    _check_agent(output(runs, "langchain_agent_tools.py"))


def test_langgraph_agent_streams_and_blocks_the_harmful_tool_call(runs) -> None:
    out = output(runs, "langgraph_agent.py")
    benign, harmful = out.split("user (benign)")[1].split("user (harmful)")
    # The graph ran the served call's tool and streamed the model's verified answer.
    assert "[model] tool call get_weather(" in benign
    assert "[tools] tool result 'Sunny, 21 °C in Paris.'" in benign
    assert "[model] streams: It is sunny in Paris today, around 21 °C.\n" in benign
    # Token-granularity deltas: the sentence arrives in several pieces, not one burst.
    assert int(benign.split("streamed ")[1].split(" text delta")[0]) > 1
    assert "SERVED" in benign
    # The harmful call went over budget: never returned, so web_search never ran.
    assert "BLOCKED" in harmful and "tool call" not in harmful.split("BLOCKED")[0]
    assert "answer -> \"I'm sorry, but I can't help with that.\"" in harmful
    assert out.splitlines()[-1] == "tools that actually ran: [\"get_weather('Paris')\"]"


def test_llamaindex_agent_blocks_the_harmful_tool_call(runs) -> None:
    _check_agent(output(runs, "llamaindex_agent.py"))


def test_llamaindex_rag_retrieves_and_answers(runs) -> None:
    out = output(runs, "llamaindex_rag.py")
    assert "indexed 3 documents" in out
    # Retrieval is real (MiniLM): each question finds its page.
    assert "retrieved: vacation_policy.txt" in out and "retrieved: lab_safety.txt" in out
    answers = [line for line in out.splitlines() if line.startswith("A: ")]
    assert len(answers) == 2 and all(len(a) > len("A: ") for a in answers)
    reports = [line for line in out.splitlines() if line.startswith("[safety report]")]
    assert len(reports) == 2 and all("safe=True" in line for line in reports)


def test_custom_cost_and_reward_models_all_load_and_run(runs) -> None:
    out = output(runs, "custom_cost_and_reward.py")
    assert "skipped" not in out  # the tiny checkpoints always load
    for name in ("Llama-Guard-style guard", "toxicity classifier", "function", "strictest"):
        assert f"cost = {name}" in out
    for name in ("reward classifier", "function"):
        assert f"reward = {name}" in out
    assert out.count("verified cost") == 4


def test_train_your_critic_trains_saves_and_uses_it(runs) -> None:
    out = output(runs, "train_your_critic.py")
    assert "rolling out 16 prompts x 4 samples" in out
    assert "safety AUC" in out
    assert "saved critic to" in out
    critic = Path(out.split("saved critic to ")[1].splitlines()[0])
    assert (critic / "critic.json").is_file() and (critic / "critic.safetensors").is_file()
    assert "critic check: " in out
    # A critic worse than the safety state alone is reported and not decoded with.
    if "worse than the safety state alone" in out:
        assert "Decoding without the critic" in out and "critic_used=True" not in out
    else:
        assert "critic_used=True" in out


def test_evaluate_your_prompts_prints_the_table(runs) -> None:
    out = output(runs, "evaluate_your_prompts.py")
    assert "18 responses" in out  # 3 strategies x 6 prompts
    for kind in ("harmful", "benign"):
        table = out.split(f"{kind} prompts\n")[1].split("\n\n")[0].splitlines()
        assert table[0].startswith("strategy")
        rows = {line.split()[0]: line.split()[1] for line in table[1:]}
        assert rows == {
            "plain": "raw",
            "best_of_n:n_candidates=4": "raw",
            "inferenceguard:n_beams=2,n_candidates=4": "guarded",
        }
        guarded = next(line for line in table if line.startswith("inferenceguard"))
        assert "100%" in guarded.split("guarded")[1].split("[")[0]  # verified: always safe
    report = Path(out.split("full report: ")[1].strip())
    assert report.is_file() and "What the numbers mean" in report.read_text(encoding="utf-8")


def test_demo_takes_threads() -> None:
    # The demo has no tiny mode; its argument parsing is checked without loading models.
    import importlib.util

    spec = importlib.util.spec_from_file_location("cookbook_demo", COOKBOOK / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert demo.parse_args(["--threads", "2"]).threads == 2
    assert demo.parse_args([]).threads is None
    with pytest.raises(SystemExit):
        demo.parse_args(["--threads", "0"])
