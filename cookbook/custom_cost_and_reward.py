"""Bring your own cost model and reward model: a Llama Guard, a toxicity classifier, a function.

What it shows: "safe" means "within budget under the cost model", so the cost model is the
most important choice you make. ``load_cost_model`` / ``load_reward_model`` turn a hub id,
a local folder or a Python function into a scorer, picking the loader from the
checkpoint's ``config.json``:

* a Llama-Guard-style generative guard (``*ForCausalLM``): cost = P("unsafe") at the
  verdict position, one forward pass, threshold 0.5;
* a toxicity classifier (``AutoModelForSequenceClassification``): cost = P(toxic);
* a Python function ``fn(prompt, response) -> float`` with your threshold;
* the strictest of several, as one batched function;

and, as reward models, a reward classifier (one output logit) and a function. Each is put
in an ``InferenceGuard`` around the same base model and answers the same request; the
script prints the verified cost under each.

Run (offline):
    python cookbook/custom_cost_and_reward.py --tiny      # tiny random checkpoints, seconds
    python cookbook/custom_cost_and_reward.py             # SmolLM2 + the hub checkpoints below
    python cookbook/custom_cost_and_reward.py --guard-model ./Llama-Guard-3-1B \\
        --toxicity-model ./roberta_toxicity_classifier --reward-model ./deberta-reward

Default mode loads the hub ids in the settings from the Hugging Face cache; a checkpoint
that is not there (e.g. offline) is skipped with a message, and the rest still runs. Pass a
local folder (``hf download ID --local-dir DIR`` where the hub is reachable) to use one.
In --tiny mode every checkpoint is a tiny random model of the same architecture, saved to
a temp folder and loaded by path through the same code.

Time on CPU with the default models: about 30 s with only the function scorers (the hub
checkpoints not cached; measured 33 s wall, 16 s CPU, one torch thread on a shared 2-core
machine); Llama-Guard-3-1B adds minutes on CPU (a 1B forward per block: use a GPU);
--tiny: ~10 s.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from _common import load_lm, parse_args, save_tiny_scorers

from inferenceguard import CostModel, GuardConfig, InferenceGuard, ModelLoadError, RewardModel
from inferenceguard.scorers.registry import load_cost_model, load_reward_model

Scorer = TypeVar("Scorer", CostModel, RewardModel)

# -----------------------------------------------------------------------------
# settings
GUARD_MODEL = "meta-llama/Llama-Guard-3-1B"  # any Llama-Guard-style guard (kind="guard")
TOXICITY_MODEL = "s-nlp/roberta_toxicity_classifier"  # labels: neutral / toxic
REWARD_MODEL = "OpenAssistant/reward-model-deberta-v3-large-v2"  # one logit: the reward
PROMPT = "My coworker keeps taking credit for my work. Write what I should tell him."
INSULTS = ("idiot", "stupid", "moron", "loser", "pathetic", "shut up")
CONFIG = GuardConfig(n_candidates=4, n_beams=2, block_len=16, max_new_tokens=48, seed=0)
# -----------------------------------------------------------------------------


def insult_cost(prompt: str, response: str) -> float:
    """Your own rule as a cost: 1 per insult in the response (unsafe above 0.5)."""
    text = response.lower()
    return float(sum(len(re.findall(rf"\b{re.escape(word)}\b", text)) for word in INSULTS))


def concise_reward(prompt: str, response: str) -> float:
    """Your own notion of "good": many distinct words, no rambling past 60 words."""
    words = response.split()
    return len(set(words)) / 60 - max(0, len(words) - 60) / 30


def strictest(costs: Sequence[CostModel]) -> CostModel:
    """One cost model that is unsafe when ANY of ``costs`` is: max over ``cost - threshold``."""

    def score(prompts: list[str], responses: list[str]) -> torch.Tensor:
        margins = [c(prompts, responses) - c.threshold for c in costs]
        return torch.stack(margins).amax(dim=0)

    ids = "+".join(c.id for c in costs)
    return CostModel.from_callable(score, threshold=0.0, batched=True, id=f"max({ids})")


def try_load(what: str, load: Callable[[], Scorer]) -> Scorer | None:
    """Load a checkpoint, or say why it was skipped (not cached while offline, …)."""
    try:
        return load()
    except ModelLoadError as exc:
        print(f"skipped {what}: {exc}")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guard-model", default=GUARD_MODEL)
    parser.add_argument("--toxicity-model", default=TOXICITY_MODEL)
    parser.add_argument("--reward-model", default=REWARD_MODEL)
    args = parse_args(None, parser=parser)
    if args.tiny:  # tiny random checkpoints in the real layouts, loaded by path below
        tiny_dir = tempfile.TemporaryDirectory(prefix="cookbook-scorers-")  # removed at exit
        paths = save_tiny_scorers(tiny_dir.name)
        args.guard_model, args.toxicity_model = paths["guard"], paths["toxicity"]
        args.reward_model = paths["reward"]
    lm = load_lm(args.tiny)

    # --- cost models -------------------------------------------------------------------
    costs: dict[str, CostModel | None] = {
        # Llama Guard 3 renders its own safety-policy prompt from the chat template; pass
        # template_kwargs={"excluded_category_keys": ["S6"]} to drop a category.
        "Llama-Guard-style guard": try_load(
            args.guard_model, lambda: load_cost_model(args.guard_model, kind="guard")
        ),
        # Toxicity classifiers are trained on the text alone: score only the response.
        "toxicity classifier": try_load(
            args.toxicity_model,
            lambda: load_cost_model(args.toxicity_model, input_format="response"),
        ),
        "function": load_cost_model(insult_cost, threshold=0.5, id="insults"),
    }
    loaded = [c for c in costs.values() if c is not None]
    if len(loaded) > 1:
        costs["strictest of the above"] = strictest(loaded)

    # --- reward models -----------------------------------------------------------------
    rewards: dict[str, RewardModel | None] = {
        "reward classifier": try_load(
            args.reward_model, lambda: load_reward_model(args.reward_model)
        ),
        "function": load_reward_model(concise_reward, id="concise"),
    }

    print(f"request: {PROMPT}\n")
    default_reward = rewards["function"]
    for name, cost in costs.items():
        if cost is None:
            continue
        result = InferenceGuard(lm, cost, default_reward, config=CONFIG).generate(PROMPT)
        report = result.safety
        print(f"cost = {name} [{cost.id}], threshold {cost.threshold}")
        print(
            f"  verified cost {report.cost:.3f} <= budget {report.budget:.3f}: {report.safe}; "
            f"finish_reason={result.finish_reason}, resample rounds {report.resample_rounds}"
        )
        print(f"  answer: {result.text.strip()[:160]!r}")
    function_cost = costs["function"]
    for name, reward in rewards.items():
        if reward is None:
            continue
        result = InferenceGuard(lm, function_cost, reward, config=CONFIG).generate(PROMPT)
        score = float(reward([PROMPT], [result.text])[0])
        print(f"reward = {name} [{reward.id}]: chosen answer scores {score:.3f}")
        print(f"  answer: {result.text.strip()[:160]!r}")


if __name__ == "__main__":
    main()
