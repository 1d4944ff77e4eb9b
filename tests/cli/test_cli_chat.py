"""``inferenceguard chat``: its defaults fit the shipped critic, one question and a session."""

from __future__ import annotations

import logging

import pytest

from inferenceguard import GuardConfig
from inferenceguard.cli import build_parser, main
from inferenceguard.cli.chat import config_from_args
from inferenceguard.critic import read_critic_metadata
from inferenceguard.critic.io import check_compatibility, default_critic_path

SMALL = ["--n-candidates", "4", "--block-len", "4", "--max-new-tokens", "8", "--seed", "0"]


def test_default_chat_fits_the_shipped_critic_without_a_warning(caplog):
    config = config_from_args(build_parser(["chat"]).parse_args(["chat"]))
    assert config.temperature == GuardConfig().temperature
    meta = read_critic_metadata(default_critic_path())
    with caplog.at_level(logging.INFO, logger="inferenceguard"):
        check_compatibility(meta, config=config)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_chat_answers_one_question(built, capsys):
    assert main(["chat", *SMALL, "Hi there"]) == 0
    out = capsys.readouterr().out
    assert "[finish=" in out and "safe=True" in out
    assert built["critic"] == "default" and built["model"] == "default"
    assert built["config"].max_new_tokens == 8


def test_chat_session_keeps_the_history(built, monkeypatch, capsys):
    import inferenceguard

    lines = iter(["Hello", "", "And then?", "exit", "never read"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    seen: list[object] = []
    guard_builder = inferenceguard.build_guard

    def spy(**kwargs):
        guard = guard_builder(**kwargs)
        stream = guard.stream

        def recording(messages, **kw):
            seen.append([dict(m) for m in messages])
            return stream(messages, **kw)

        guard.stream = recording
        return guard

    monkeypatch.setattr(inferenceguard, "build_guard", spy)
    assert main(["chat", *SMALL]) == 0
    assert [m["content"] for m in seen[0]] == ["Hello"]
    assert [m["role"] for m in seen[1]] == ["user", "assistant", "user"]
    assert seen[1][-1]["content"] == "And then?"
    assert capsys.readouterr().out.count("[finish=") == 2


@pytest.mark.parametrize("value", ["0", "-1"])
def test_chat_rejects_a_bad_setting_as_a_typed_error(value, no_build, capsys):
    assert main(["chat", "--temperature", value, "Hi"]) == 2
    assert "temperature" in capsys.readouterr().err
