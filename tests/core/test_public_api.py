"""The public surface is pinned so it cannot grow or shrink by accident."""

from __future__ import annotations

import inferenceguard
from inferenceguard import errors
from inferenceguard.cli import main


def test_exported_members_are_pinned():
    assert sorted(inferenceguard.__all__) == sorted(
        [
            "ArtifactError",
            "ConfigError",
            "ContextLengthError",
            "CostModel",
            "CriticMismatchError",
            "DEFAULT_LM_ID",
            "GuardConfig",
            "GuardResult",
            "InferenceGuard",
            "InferenceGuardError",
            "InputError",
            "LazyGuard",
            "LocalLM",
            "ModelLoadError",
            "ResourceError",
            "RewardModel",
            "SafetyExhaustedError",
            "SafetyReport",
            "SamplerSettings",
            "ScorerError",
            "StreamChunk",
            "__version__",
            "build_guard",
            "load_default_cost_model",
            "load_default_reward_model",
        ]
    )
    for name in inferenceguard.__all__:
        assert hasattr(inferenceguard, name)


def test_every_error_shares_one_root_and_carries_the_hint():
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.InferenceGuardError)
    err = errors.ConfigError("bad value 3.", hint="use 4.")
    assert str(err) == "bad value 3. Fix: use 4." and isinstance(err, ValueError)


def test_cli_prints_help_and_version(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert inferenceguard.__version__ in capsys.readouterr().out
