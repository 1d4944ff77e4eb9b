"""The ``inferenceguard`` command table, its help, and how the library's errors are reported."""

from __future__ import annotations

import argparse

import pytest

from inferenceguard.cli import COMMANDS, SUMMARIES, build_parser, error_line, main, resolve
from inferenceguard.cli._common import HelpFormatter
from inferenceguard.errors import ConfigError, ModelLoadError


def test_every_command_entry_resolves_to_a_register_function():
    assert list(SUMMARIES) == list(COMMANDS)
    for verb, spec in COMMANDS.items():
        module, sep, attr = spec.partition(":")
        assert sep and attr == "register" and module.startswith("inferenceguard.cli."), verb
        assert callable(resolve(spec)), verb


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_every_verb_has_working_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: inferenceguard {verb}" in out and "(default: " in out


def _verb_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()  # every verb registered
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_help_states_the_default_of_every_option(verb):
    parser = _verb_parsers()[verb]
    formatter = HelpFormatter(prog=verb)
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0:  # positionals and flags
            continue
        assert action.help, f"{verb} {action.option_strings} has no help"
        text = formatter._get_help_string(action)
        assert "default" in text, f"{verb} {action.option_strings}: {text!r}"


def test_serve_help_does_not_print_the_api_key(monkeypatch, capsys):
    monkeypatch.setenv("INFERENCEGUARD_API_KEY", "s3cret-key")
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--api-key" in out and "s3cret-key" not in out


def test_only_the_chosen_verb_is_registered_in_full():
    parsers = dict(
        next(
            a for a in build_parser(["chat"])._actions if isinstance(a, argparse._SubParsersAction)
        ).choices
    )
    assert any("--n-candidates" in a.option_strings for a in parsers["chat"]._actions)
    assert not any("--strategy" in a.option_strings for a in parsers["eval"]._actions)


def test_no_verb_prints_the_commands_and_exits_2(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(verb in out for verb in COMMANDS)


def test_error_line_joins_message_and_fix_on_one_line():
    err = ConfigError("bad\nvalue 3.", hint="use 4.")
    assert error_line(err) == "bad value 3. Fix: use 4."


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["chat", "--model", "/nonexistent/model", "Hi"], "model folder '/nonexistent/model'"),
        (["chat", "--cost-model", "./no-such-cost", "Hi"], "cost model folder './no-such-cost'"),
        (["serve", "--reward-model", "~/no-such-reward"], "reward model folder"),
        (["chat", "--critic", "./no-such-critic", "Hi"], "critic folder './no-such-critic'"),
    ],
)
def test_a_missing_folder_is_one_line_and_exit_2(argv, what, no_build, capsys):
    if argv[0] == "serve":
        pytest.importorskip("uvicorn")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("inferenceguard: error: The ") and what in err
    assert "does not exist. Fix: check the path" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_the_hint_of_a_typed_error_is_printed(monkeypatch, capsys):
    import inferenceguard

    def refuse(**kwargs):
        raise ModelLoadError("No such model 'x/y'.", hint="check the id.")

    monkeypatch.setattr(inferenceguard, "build_guard", refuse)
    assert main(["chat", "Hi"]) == 2
    assert capsys.readouterr().err == (
        "inferenceguard: error: No such model 'x/y'. Fix: check the id.\n"
    )


def test_other_exceptions_keep_their_traceback(monkeypatch):
    import inferenceguard

    def crash(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(inferenceguard, "build_guard", crash)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["chat", "Hi"])
