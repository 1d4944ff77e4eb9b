"""The README cannot drift from the code: its generated sections match, and every
```python block runs (on the tiny model, offline) unless marked with the reason it cannot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferenceguard import CostModel, InferenceGuard, RewardModel
from inferenceguard.config import GuardConfig, config_reference_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    return text[text.index(start) + len(start) : text.index(end)].strip()


def test_readme_starts_with_the_two_commands():
    head = README.read_text(encoding="utf-8").split("\n\n", 3)[:3]
    assert "make demo" in "\n".join(head) and "make test" in "\n".join(head)


def test_config_reference_matches_the_code():
    assert _section("config-reference") == config_reference_markdown(), (
        "README config reference is stale: run "
        "`python -c 'from inferenceguard.config import config_reference_markdown as c; print(c())'`"
    )


def test_every_config_option_is_documented():
    for name, field in GuardConfig.model_fields.items():
        assert field.description, f"GuardConfig.{name} has no docstring"


# --------------------------------------------------------------------------- snippets
#: A line right before a ```python block that exempts it, with the reason.
_SKIP = "<!-- readme-test: skip "


def _python_blocks() -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason or None)`` for every ```python block of the README."""
    blocks, lines = [], README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
            before = lines[i - 1].strip() if i else ""
            reason = before[len(_SKIP) : -len("-->")].strip() if before.startswith(_SKIP) else None
            blocks.append((start, "\n".join(lines[start:end]), reason))
            i = end
        i += 1
    return blocks


@pytest.fixture
def tiny_defaults(monkeypatch, tiny_lm):
    """The embedded defaults swapped for the tiny random model and callable scorers, so a
    snippet runs as written, offline, in well under a second per call."""
    from inferenceguard import build as build_module

    cost = CostModel.from_callable(lambda p, r: float("bomb" in r), threshold=0.5, id="kw")
    reward = RewardModel.from_callable(lambda p, r: float(len(set(r.split()))), id="words")

    def fake_build_guard(*, config: GuardConfig | None = None, **specs: Any) -> InferenceGuard:
        return InferenceGuard(tiny_lm, cost, reward, config=config)

    monkeypatch.setattr(build_module, "build_guard", fake_build_guard)


def test_the_readme_has_python_snippets_and_few_are_skipped():
    blocks = _python_blocks()
    assert len(blocks) >= 5
    skipped = [reason for _, _, reason in blocks if reason is not None]
    assert all(skipped), "a skip marker must give its reason"
    assert len(skipped) <= len(blocks) // 2


@pytest.mark.parametrize(
    ("line", "code", "reason"), _python_blocks(), ids=[f"line{b[0]}" for b in _python_blocks()]
)
def test_every_readme_python_snippet_runs(line, code, reason, tiny_defaults, capsys):
    compiled = compile(code, f"README.md:{line}", "exec")  # even a skipped block must parse
    if reason is not None:
        pytest.skip(reason)
    exec(compiled, {"__name__": f"readme_line_{line}"})
    assert capsys.readouterr().out.strip(), "a runnable snippet shows its result"
