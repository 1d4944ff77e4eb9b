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


@pytest.fixture
def streamed(built, monkeypatch) -> list[list[dict[str, str]]]:
    """The messages of every ``guard.stream`` call the chat makes (on the tiny guard)."""
    import inferenceguard

    seen: list[list[dict[str, str]]] = []
    build = inferenceguard.build_guard

    def spy(**kwargs):
        guard = build(**kwargs)
        stream = guard.stream

        def recording(messages, **kw):
            seen.append([dict(m) for m in messages])
            return stream(messages, **kw)

        guard.stream = recording
        return guard

    monkeypatch.setattr(inferenceguard, "build_guard", spy)
    return seen


def _type(monkeypatch, *lines: str) -> None:
    """The session reads ``lines``, then Ctrl-D."""
    typed = iter(lines)

    def fake_input(prompt: str = "") -> str:
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)


def test_chat_session_keeps_the_history(streamed, monkeypatch, capsys):
    _type(monkeypatch, "Hello", "", "And then?", "exit", "never read")
    assert main(["chat", *SMALL]) == 0
    assert [m["content"] for m in streamed[0]] == ["Hello"]
    assert [m["role"] for m in streamed[1]] == ["user", "assistant", "user"]
    assert streamed[1][-1]["content"] == "And then?"
    assert capsys.readouterr().out.count("[finish=") == 2


def test_an_over_long_turn_is_reported_and_the_session_goes_on(streamed, monkeypatch, capsys):
    _type(monkeypatch, "Hello", "word " * 3000, "Again")
    assert main(["chat", *SMALL]) == 0
    assert len(streamed) == 3
    assert [m["content"] for m in streamed[2] if m["role"] == "user"] == ["Hello", "Again"]
    captured = capsys.readouterr()
    assert captured.out.count("[finish=") == 2
    assert captured.err.count("inferenceguard: error: The prompt has") == 1
    assert "context window" in captured.err and "Traceback" not in captured.err


def test_an_over_long_question_exits_2(built, capsys):
    assert main(["chat", *SMALL, "word " * 3000]) == 2
    assert "context window" in capsys.readouterr().err


def test_chat_budget_set_and_threads(built, monkeypatch):
    import torch

    threads: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    argv = ["chat", *SMALL, "--budget", "0.3", "--set", "top_p=0.9", "--set", "n_beams=4"]
    assert main([*argv, "--n-beams", "3", "--threads", "1", "Hi"]) == 0
    config = built["config"]
    assert (config.budget, config.top_p, config.n_candidates) == (0.3, 0.9, 4)
    assert config.n_beams == 3  # a named option wins over --set
    assert threads == [1]


@pytest.mark.parametrize("value", ["0", "-1"])
def test_chat_rejects_a_bad_setting_as_a_typed_error(value, no_build, capsys):
    assert main(["chat", "--temperature", value, "Hi"]) == 2
    assert "temperature" in capsys.readouterr().err
