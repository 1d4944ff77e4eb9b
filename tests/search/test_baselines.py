"""Every strategy by name: none rewrites the request's configuration, each yields what the
runner and the critic's rollouts expect."""

from __future__ import annotations

import pytest

from inferenceguard.search.baselines import STRATEGIES, strategy_config
from inferenceguard.search.events import BlockEvent, Commit, Outcome


def _drain(search):
    events = []
    while True:
        try:
            events.append(next(search))
        except StopIteration as stop:
            return events, stop.value


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_no_strategy_rewrites_the_request_configuration(make_guard, name):
    guard = make_guard(strategy=name)
    ctx = guard._context("Hi", None, None, {})
    config = ctx.config
    events, outcome = _drain(STRATEGIES[name](ctx))
    assert ctx.config is config and ctx.config == strategy_config(guard.config)
    assert isinstance(outcome, Outcome) and outcome.tokens
    assert all(isinstance(e, Commit | BlockEvent) for e in events)


def test_plain_runs_and_reports_one_whole_response(make_guard):
    result = make_guard(strategy="plain", n_candidates=4, n_beams=2).generate("Hi")
    config = result.safety.config
    assert (config["n_candidates"], config["n_beams"], config["adaptive"]) == (1, 1, False)
    assert config["block_len"] == config["max_new_tokens"]
    assert result.safety.steps == 1 and result.safety.candidates_sampled == 1


def test_block_search_reports_the_critic_inputs_of_every_block(make_guard, tiny_lm):
    guard = make_guard(n_candidates=4, n_beams=2, block_len=4, max_new_tokens=12)
    ctx = guard._context("Hi", None, None, {})
    events, outcome = _drain(STRATEGIES["inferenceguard"](ctx))
    blocks = [e for e in events if isinstance(e, BlockEvent)]
    assert len(blocks) == ctx.stats.steps == 3
    assert [b.step_frac[0].item() for b in blocks] == pytest.approx([4 / 12, 8 / 12, 1.0])
    assert all(b.hidden.shape == (4, tiny_lm.hidden_size) and b.z.shape == (4,) for b in blocks)
    assert outcome.z_trace == [pytest.approx(0.5)] * 3


def test_args_yields_nothing_before_its_answer(make_guard):
    guard = make_guard(strategy="args", max_new_tokens=5, args_top_k=3)
    ctx = guard._context("Hi", None, None, {})
    events, outcome = _drain(STRATEGIES["args"](ctx))
    assert events == [] and outcome.finish_reason == "length" and len(outcome.tokens) == 5
    assert ctx.stats.forwards == 1 + 5  # the prefill, then one LocalLM.step per token
    assert outcome.z_trace == [0.5] and outcome.text == ctx.response_text(outcome.tokens)
