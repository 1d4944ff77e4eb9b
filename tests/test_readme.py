"""The README's generated sections cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

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
