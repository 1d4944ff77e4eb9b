"""The public surface is pinned so it cannot grow or shrink by accident (httpx style).

Each package's ``__all__`` must list exactly the public names in ``vars(package)``: a new
import that leaks a name, or an export that is gone, fails here. Submodules are allowed
(importing ``inferenceguard.evaluation`` sets the attribute ``evaluation``).
"""

from __future__ import annotations
import __future__

import importlib
import types

import pytest

import inferenceguard
from inferenceguard import errors
from inferenceguard.cli import main


def test_exported_members_are_pinned():
    assert sorted(inferenceguard.__all__) == sorted(
        [
            "ArtifactError",
            "BatchingConfig",
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
            "embedded_lm_dir",
            "load_default_cost_model",
            "load_default_reward_model",
        ]
    )
    for name in inferenceguard.__all__:
        assert hasattr(inferenceguard, name)


def _public_names(module: types.ModuleType) -> set[str]:
    """Public names bound in ``module``, less its own submodules and ``__future__`` flags."""
    prefix = module.__name__ + "."
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, __future__._Feature)
        and not (isinstance(value, types.ModuleType) and value.__name__.startswith(prefix))
    }


@pytest.mark.parametrize(
    "name", ["inferenceguard", "inferenceguard.critic", "inferenceguard.evaluation"]
)
def test_all_lists_exactly_the_public_names(name):
    module = importlib.import_module(name)
    exported = set(module.__all__) - {"__version__"}
    assert _public_names(module) == exported
    assert len(module.__all__) == len(set(module.__all__))


def test_testing_exports_everything_it_defines_and_leaks_nothing_new():
    """``inferenceguard.testing`` also binds helpers it imports (``torch``, typing names,
    top-level classes); those are public elsewhere. Everything it defines is exported."""
    testing = importlib.import_module("inferenceguard.testing")
    defined = {
        name
        for name in _public_names(testing)
        if getattr(getattr(testing, name), "__module__", None) == testing.__name__
    }
    assert defined == set(testing.__all__)
    for name in _public_names(testing) - defined:
        value = getattr(testing, name)
        owner = getattr(value, "__module__", None) or ""
        assert (
            isinstance(value, types.ModuleType)
            or owner.split(".")[0] in ("typing", "collections")
            or name in inferenceguard.__all__
        ), f"inferenceguard.testing leaks {name!r}"


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
