"""evaluation.presets: strategy specs, their labels and configs."""

from __future__ import annotations

import pytest

from inferenceguard.errors import ConfigError
from inferenceguard.evaluation import parse_strategy
from inferenceguard.evaluation.presets import resolve_config


def test_parse_strategy_presets_and_options():
    spec = parse_strategy("best_of_n:n_candidates=16,lagrange_multiplier=10")
    assert spec.name == "best_of_n"
    assert spec.overrides == {"n_candidates": 16, "lagrange_multiplier": 10}
    assert spec.label == "best_of_n:lagrange_multiplier=10,n_candidates=16"  # canonical
    assert spec.method == "generate_unverified"
    assert parse_strategy(spec.label) == spec
    ig = parse_strategy("inferenceguard")
    # No use_critic override: the guard's own setting applies (issue 20 item 10).
    assert (ig.method, ig.config_overrides()) == ("generate", {"strategy": "inferenceguard"})
    assert parse_strategy("inferenceguard+critic").needs_critic
    raw = parse_strategy("inferenceguard:verified=false")
    assert raw.method == "generate_unverified" and raw.label == "inferenceguard:verified=false"
    assert parse_strategy("plain:temperature=0.7,do_sample=true").overrides == {
        "temperature": 0.7,
        "do_sample": True,
    }


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("bestofn", "Did you mean 'best_of_n'"),
        ("beam:n_candidatez=4", "Did you mean 'n_candidates'"),
        ("beam:n_candidates", "KEY=VALUE"),
        ("beam:strategy=plain", "preset name already chooses"),
        ("plain:verified=maybe", "true or false"),
    ],
)
def test_parse_strategy_errors(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_strategy(spec)


def test_resolve_config_layers_and_clamps(make_guard):
    base = make_guard(block_len=4, max_new_tokens=12).config
    cfg = resolve_config(base, parse_strategy("beam:n_beams=1"), {"max_new_tokens": 3})
    assert (cfg.strategy, cfg.n_beams, cfg.max_new_tokens, cfg.block_len) == ("beam", 1, 3, 3)
    with pytest.raises(ConfigError, match="beam:n_beams=99"):
        resolve_config(base, parse_strategy("beam:n_beams=99"))


def test_inferenceguard_preset_keeps_the_guards_critic_setting(make_guard):
    """`eval --strategy inferenceguard` runs what every other entry point runs."""
    ig = parse_strategy("inferenceguard")
    assert resolve_config(make_guard().config, ig).use_critic is True
    assert resolve_config(make_guard(use_critic=False).config, ig).use_critic is False
    with_critic = resolve_config(
        make_guard(use_critic=False).config, parse_strategy("inferenceguard+critic")
    )
    assert with_critic.use_critic is True
