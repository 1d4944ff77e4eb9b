"""Critic-first screening: the cost model verifies only the critic's best candidates, and
nothing unverified is ever kept, committed, streamed or returned."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferenceguard import CostModel, GuardConfig
from inferenceguard.search import baselines, beam, steps
from inferenceguard.search.events import BlockEvent
from inferenceguard.testing import keyword_cost

PROMPTS = ["Hi", "Tell me about cats.", "What is 2+2?"]
RARE = ["x", "q", "z"]  # letters a random block contains now and then


class HashCritic:
    """A random critic: ``p_safe`` and value are fixed pseudo-random functions of a row's
    hidden state, so a row gets the same prediction alone or batched with others."""

    def __init__(self, seed: int, hidden_size: int = 64) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.w = torch.randn(hidden_size, 2, generator=gen)

    def predict(self, hidden, z, step_frac):
        x = hidden.float() @ self.w
        u = torch.frac(torch.sin(x * 12.9898) * 43758.5453).abs()
        return u[:, 0], u[:, 1]


def hash_cost(seed: int, threshold: float) -> tuple[CostModel, dict[str, float]]:
    """A cost model with a uniform random cost per response text, and the record of every
    text it scored (with its cost)."""
    scored: dict[str, float] = {}

    def cost(prompt: str, response: str) -> float:
        digest = hashlib.sha256(f"{seed}|{response}".encode()).digest()
        value = int.from_bytes(digest[:8], "big") / 2**64
        scored[response] = value
        return value

    return CostModel.from_callable(cost, threshold=threshold, id=f"hash:{seed}"), scored


@contextmanager
def recording() -> Iterator[dict[str, list]]:
    """Record every beam the search keeps and every text it commits (from any thread)."""
    seen: dict[str, list] = {"beams": [], "commits": []}
    lock = threading.Lock()
    extend, commit = beam.extend_beams, beam._Progress.commit

    def extend_recorded(*args, **kwargs):
        out = extend(*args, **kwargs)
        with lock:
            seen["beams"] += out
        return out

    def commit_recorded(self, ctx, state):
        out = commit(self, ctx, state)
        if out is not None:
            with lock:
                seen["commits"].append(out.text)
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(beam, "extend_beams", extend_recorded)
        m.setattr(beam._Progress, "commit", commit_recorded)
        yield seen


def check_verified(lm, chunks, seen, scored, budget: float, mode: str) -> None:
    """Every streamed text, commit, kept beam (and its block ends) and the answer was
    scored by the cost model; those the guarantee covers are within budget."""
    emitted = ""
    for chunk in chunks[:-1]:
        emitted += chunk.delta
        assert emitted in scored and scored[emitted] <= budget
    for text in seen["commits"]:
        assert text in scored and scored[text] <= budget
    for b in seen["beams"]:
        for end in b.boundaries[1:]:
            prefix = lm.decode(b.tokens[:end])
            assert prefix in scored, "a kept beam holds a block the cost model never scored"
            if mode == "prefix":
                assert scored[prefix] <= budget
        if mode == "prefix":
            assert all(z >= 0 for z in b.z_trace)
    result = chunks[-1].result
    # The answer is verified within budget, or nothing at all (when even the refusal and
    # the empty string score over budget, as a random cost model may have it).
    if result.text:
        assert result.safety.safe and result.text in scored and scored[result.text] <= budget
    assert result.safety.cost_evaluations <= result.safety.candidates_sampled


SEARCHES = st.fixed_dictionaries(
    {
        "n_candidates": st.sampled_from([4, 6, 8]),
        "n_beams": st.sampled_from([1, 2, 3]),
        "safety_mode": st.sampled_from(["prefix", "final"]),
        "commit_horizon": st.sampled_from([None, 0, 1]),
        "critic_ranking": st.sampled_from(["reward", "value"]),
        "resample_rounds": st.sampled_from([0, 2]),
        "seed": st.integers(0, 1000),
    }
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    search=SEARCHES,
    cost_seed=st.integers(0, 10**6),
    critic_seed=st.integers(0, 10**6),
    p_unsafe=st.sampled_from([0.2, 0.5]),
)
def test_screening_never_keeps_commits_or_emits_an_unverified_candidate(
    make_guard, tiny_lm, search, cost_seed, critic_seed, p_unsafe
):
    budget = 1.0 - p_unsafe
    cost, scored = hash_cost(cost_seed, threshold=budget)
    guard = make_guard(
        cost=cost, critic=HashCritic(critic_seed), critic_screening=True, block_len=3,
        max_new_tokens=9, **search,
    )  # fmt: skip
    with recording() as seen:
        chunks = list(guard.stream("Hi"))
    check_verified(tiny_lm, chunks, seen, scored, budget, search["safety_mode"])


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(search=SEARCHES, cost_seed=st.integers(0, 10**6), critic_seed=st.integers(0, 10**6))
def test_screening_keeps_every_request_verified_in_one_scheduler_batch(
    make_guard, tiny_lm, search, cost_seed, critic_seed
):
    cost, scored = hash_cost(cost_seed, threshold=0.7)  # the cost ignores the prompt
    guard = make_guard(
        cost=cost, critic=HashCritic(critic_seed), critic_screening=True, block_len=3,
        max_new_tokens=9, **search,
    )  # fmt: skip
    start = threading.Barrier(len(PROMPTS))

    def answer(prompt):
        start.wait()
        return list(guard.stream(prompt))

    with recording() as seen, ThreadPoolExecutor(len(PROMPTS)) as pool:
        answers = list(pool.map(answer, PROMPTS))
    for chunks in answers:
        check_verified(tiny_lm, chunks, seen, scored, 0.7, search["safety_mode"])
    assert guard.scheduler.in_flight == (0, 0, 0)


def _unsafe(text: str) -> bool:
    return any(w in text.lower() for w in RARE)


def test_a_perfect_critic_lets_the_cost_model_score_only_k_candidates_per_block(
    make_ctx, tiny_lm, monkeypatch
):
    sampled: list[list[str]] = []
    original = steps.sample_candidates

    def sample_recorded(*args, **kwargs):
        cands = original(*args, **kwargs)
        sampled.append(cands.texts)
        return cands

    class Oracle:
        """p_safe is the truth: 1 when the candidate's text is within budget."""

        def predict(self, hidden, z, step_frac):
            truth = torch.tensor([0.0 if _unsafe(t) else 1.0 for t in sampled[-1]])
            return truth, torch.zeros_like(truth)

    monkeypatch.setattr(steps, "sample_candidates", sample_recorded)
    k, saved = 2, 0
    for seed in range(3):
        ctx = make_ctx(
            lm=tiny_lm, cost=keyword_cost(RARE), critic_screening=True, n_candidates=8,
            n_beams=k, block_len=4, max_new_tokens=16, resample_rounds=0, seed=seed,
        )  # fmt: skip
        ctx = dataclasses.replace(
            ctx, critic=Oracle(), prompt_ids=tiny_lm.encode(tiny_lm.render("Hi")),
            generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip
        before = 0
        for event in baselines.inferenceguard(ctx):
            if not isinstance(event, BlockEvent):
                continue
            texts = sampled[-1]
            n_safe = sum(not _unsafe(t) for t in texts)
            scored = ctx.stats.cost_evaluations - before
            before = ctx.stats.cost_evaluations
            # K when K safe ones exist; else every candidate (to learn that none is left).
            assert scored == (k if n_safe >= k else len(texts))
            saved += len(texts) - scored
    assert saved > 0  # the oracle spared the cost model real work


def test_the_report_counts_what_the_cost_model_verified(make_guard):
    def guard(**config):
        return make_guard(
            cost=keyword_cost(RARE), critic=HashCritic(1), n_candidates=8, n_beams=2, **config
        )

    off = guard().generate("Tell me about cats.").safety
    on = guard(critic_screening=True).generate("Tell me about cats.").safety
    assert off.cost_evaluations == off.candidates_sampled > 0
    assert 0 < on.cost_evaluations < on.candidates_sampled
    assert on.critic_used and on.safe
    # Per request, like every other option.
    again = guard().generate("Tell me about cats.", critic_screening=True).safety
    assert again.cost_evaluations == on.cost_evaluations
    assert again.model_dump()["cost_evaluations"] == on.cost_evaluations  # adapters dump it


#: Tokens of the search before screening existed (recorded with the code of issue 14).
BEFORE = {
    "reward": [26322, 5781, 43305, 299, 40879, 40637, 5065, 43631, 9840, 14432, 34759, 30853],
    "value": [38770, 22712, 13618, 37448, 40879, 40637, 5065, 43631, 4624, 24661, 33339, 38317],
}


@pytest.mark.parametrize("ranking", ["reward", "value"])
def test_screening_off_answers_as_before(make_guard, ranking):
    guard = make_guard(
        cost=keyword_cost(RARE), critic=HashCritic(0), n_candidates=6, n_beams=2, seed=3,
        critic_ranking=ranking,
    )  # fmt: skip
    result = guard.generate("Tell me about cats.")
    assert result.token_ids == BEFORE[ranking]
    assert result.safety.cost_evaluations == result.safety.candidates_sampled == 18


@pytest.mark.parametrize("ranking", ["reward", "value"])
def test_screening_with_k_equal_to_n_verifies_everything_and_answers_alike(make_guard, ranking):
    # K = N leaves nothing to skip: the same candidates, scores and answer as without it.
    def run(screening):
        return make_guard(
            cost=keyword_cost(RARE), critic=HashCritic(2), n_candidates=4, n_beams=4,
            critic_ranking=ranking, critic_screening=screening, seed=5,
        ).generate("Hi")  # fmt: skip

    on, off = run(True), run(False)
    assert on.token_ids == off.token_ids and on.safety.z_trace == off.safety.z_trace
    assert on.safety.cost_evaluations == off.safety.cost_evaluations


def test_screening_through_a_prefix_session_answers_as_full_rescoring(
    make_guard, smollm2_tokenizer
):
    from transformers import LlamaConfig, LlamaForCausalLM

    from inferenceguard.scorers.guard_model import GenerativeGuardCost

    template = (
        "{{ bos_token }}Task: check the last message.\n"
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}Verdict:\n\n"
    )
    config = LlamaConfig(
        vocab_size=len(smollm2_tokenizer), hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512,
    )  # fmt: skip
    torch.manual_seed(5)
    model = LlamaForCausalLM(config).eval()
    runs = {}
    for reuse in (True, False):
        cost = GenerativeGuardCost(
            model, smollm2_tokenizer, chat_template=template, prefix_reuse=reuse
        )
        guard = make_guard(
            cost=cost, critic=HashCritic(3), critic_screening=True, n_candidates=6, n_beams=2,
            budget=0.99,
        )  # fmt: skip
        runs[reuse] = guard.generate("How do I bake bread?")
    on, off = runs[True], runs[False]
    assert on.token_ids == off.token_ids
    assert on.safety.cost_evaluations == off.safety.cost_evaluations
    assert on.safety.cost_evaluations < on.safety.candidates_sampled


def test_screening_without_a_critic_verifies_everything_and_warns_once(
    make_guard, monkeypatch, caplog
):
    monkeypatch.setattr(baselines, "_warned_no_critic", False)
    guard = make_guard(critic_screening=True)
    with caplog.at_level(logging.WARNING, logger=baselines.__name__):
        first = guard.generate("Hi").safety
        guard.generate("Hi")
    assert first.cost_evaluations == first.candidates_sampled
    assert sum("critic_screening" in r.getMessage() for r in caplog.records) == 1
    assert GuardConfig().critic_screening is False  # off until the ablation says otherwise


def test_screen_fills_each_requests_slots_in_the_critics_order(make_ctx, make_block):
    calls: list[list[str]] = []

    def cost_batch(prompts, texts):
        calls.append(sorted(texts))
        return [float(t.startswith("bad")) for t in texts]

    class Fixed:
        def predict(self, hidden, z, step_frac):
            return torch.tensor([0.9, 0.8, 0.1, 0.9, 0.7, 0.2]), torch.zeros(6)

    cost = CostModel.from_callable(cost_batch, threshold=0.5, batched=True)
    ctx = make_ctx(cost=cost, critic_screening=True, critic_ranking="value")
    ctx = dataclasses.replace(ctx, critic=Fixed())
    texts = ["bad0", "ok1", "ok2", "bad3", "bad4", "ok5"]
    cands = steps.Candidates(
        parents=torch.arange(6), request=torch.tensor([0, 0, 0, 1, 1, 1]),
        block=make_block([3] * 6, [False] * 6), tokens=[[i] for i in range(6)], texts=texts,
    )  # fmt: skip
    steps.screen(ctx, cands, torch.full((6,), float("-inf")), slots=1, tokens_budgeted=3)
    # Each request's best first; then, per request whose pick failed, its next one.
    assert calls == [["bad0", "bad3"], ["bad4", "ok1"], ["ok5"]]
    assert cands.checked.tolist() == [True, True, False, True, True, True]
    assert cands.safe.tolist() == [False, True, False, False, False, True]
    assert cands.z[2] == float("-inf") and ctx.stats.cost_evaluations == 5
