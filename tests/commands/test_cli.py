"""The documented error format holds for every kind of failure: one `error:` line and one `hint:` line on stderr
and the documented exit code; parser errors too; `--debug` adds the traceback and keeps the code."""

import pytest
from typer.testing import CliRunner

from wgan_cli.cli import app

runner = CliRunner()


@pytest.mark.parametrize("args,words", [
    (["train", "--no-such-flag"], "No such option: --no-such-flag"),
    (["toy", "--iters", "abc"], "Invalid value for '--iters'"),
    (["toy", "--dataset", "circles"], "'circles' is not one of"),
    (["sample"], "Missing argument"),
])
def test_parser_errors_are_one_error_line_and_one_hint_with_exit_2(args, words):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and words in lines[0], r.stderr
    assert lines[1].startswith(f"hint: see `wgan {args[0]} --help`")
    assert r.stdout == ""


@pytest.mark.parametrize("debug", [False, True])
def test_debug_keeps_the_documented_exit_code_and_adds_the_traceback(tmp_path, debug):
    missing = tmp_path / "missing.safetensors"
    r = runner.invoke(app, ["sample", str(missing), *(["--debug"] if debug else [])])
    assert r.exit_code == 4, r.output                      # checkpoint refused, with or without --debug
    assert f"error: {missing}: no such checkpoint file" in r.stderr
    assert ("Traceback (most recent call last)" in r.stderr) == debug


def _help_texts():
    import typer.main
    for name, command in typer.main.get_command(app).commands.items():
        yield name, command.help
        for param in command.params:
            if getattr(param, "help", None):
                yield f"{name} {param.opts[0]}", param.help


@pytest.mark.parametrize("where,help_text", [pytest.param(w, h, id=w) for w, h in _help_texts()])
def test_help_texts_survive_rich_markup(where, help_text):
    """`--help` renders each command's and option's text as Rich markup: a bare `[...]` would be read as a style
    and vanish from the page, so a literal bracket is written `\\[` and must come out as written."""
    from rich.text import Text
    assert Text.from_markup(help_text).plain == help_text.replace("\\[", "["), where
