"""What every `wgan` command shares: the parser's error format, the one place a WganError becomes an
`error:`/`hint:` pair and an exit code, the body of the training commands (toy, train, textgen) and
--config FILE. The commands themselves are cli.py; their options are options.py.

Errors: every WganError is caught once (in `handle_errors`) and printed as one line plus a hint, with the
exit code of its class (see errors.py); `--debug` shows the traceback too, with the same exit code.
"""

from __future__ import annotations

import codecs
import functools
import json
import os
import sys
import traceback
from pathlib import Path

import typer
import typer.core

from wgan_cli.version import __version__
from wgan_cli.config import RunOptions, TrainConfig
from wgan_cli.errors import UsageError, WganError

# click's exception class, found through typer's public BadParameter (typer vendors click in recent versions)
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def fill_optional_values(args: list[str], defaults: dict[str, str]) -> list[str]:
    """Options whose number may be left out (`--watch` alone, or `--watch 5`): the parser wants a value, so a
    flag of `defaults` not followed by a number is given its default there; everything after `--` left alone."""
    out = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg == "--":
            return out + args[i + 1:]
        if arg in defaults:
            try:
                float(args[i + 1])
            except (IndexError, ValueError):
                out.append(defaults[arg])
    return out


class WganGroup(typer.core.TyperGroup):
    """Parser errors (unknown option, bad value, missing argument) in the documented format: one `error:` line
    and one `hint:` line on stderr, exit code 2; help and version output as usual. `optional_values`: flag ->
    the value a bare flag stands for (see fill_optional_values)."""

    optional_values: dict[str, str] = {}

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = fill_optional_values(sys.argv[1:] if args is None else list(args), self.optional_values)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as e:
            if type(e).__name__ == "NoArgsIsHelpError":   # `wgan` alone: typer has shown the help text
                code = e.exit_code
            else:
                command = e.ctx.command_path if getattr(e, "ctx", None) else "wgan"
                typer.echo(f"error: {e.format_message()}", err=True)
                typer.echo(f"hint: see `{command} --help`", err=True)
                code = e.exit_code
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


PATH_ERRORS = "wgan-path-bytes"


def _path_bytes(exc: UnicodeError):
    """An encoding error handler for what the commands print: a file name that is not UTF-8 reaches Python as
    lone surrogates (PEP 383) and goes out as its original bytes, as the file name itself; any other character
    the stream cannot encode becomes a backslash escape, as on stderr."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for ch in exc.object[exc.start:exc.end]:
        code = ord(ch)
        out += bytes([code - 0xDC00]) if 0xDC80 <= code <= 0xDCFF else ch.encode("ascii", "backslashreplace")
    return bytes(out), exc.end


codecs.register_error(PATH_ERRORS, _path_bytes)


def keep_path_bytes(stream=None) -> None:
    """Make a strict stdout (PYTHONIOENCODING=utf-8, a UTF-8 locale) print any path: without it the last line
    ("wrote PATH", "run directory: PATH") of a finished command raised UnicodeEncodeError for a non-UTF-8 name."""
    stream = sys.stdout if stream is None else stream
    if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
        stream.reconfigure(errors=PATH_ERRORS)


def handle_errors(fn):
    """Catch WganError once: one clear line and a hint on stderr, the class's exit code; nothing else lost.
    With --debug (or WGAN_DEBUG=1) the traceback is printed first; the exit code stays the documented one."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = kwargs.get("debug", False) or os.environ.get("WGAN_DEBUG") == "1"
        try:
            return fn(*args, **kwargs)
        except WganError as e:
            if debug:
                traceback.print_exc()
            typer.echo(f"error: {e.message}", err=True)
            if e.hint:
                typer.echo(f"hint: {e.hint}", err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def rounded(result: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}


def refuse_ignored(ctx, mode: str, ignored: tuple[str, ...]) -> None:
    """Options given explicitly (not left at their defaults) that `mode` would ignore: refused, all named."""
    if ctx is None:   # called without the command line (from Python): nothing was given explicitly
        return
    given = [p for p in ctx.command.params if p.name in ignored
             and ctx.get_parameter_source(p.name).name not in ("DEFAULT", "DEFAULT_MAP")]
    if given:
        names = ", ".join(p.opts[0] for p in given)
        raise UsageError(f"{mode} does not use {names}", f"drop {names}: {mode} runs with the paper's own settings")


def train_command(task, cfg: TrainConfig, run: RunOptions, *, dry_run: bool, quiet: bool, plain: bool | None,
                  generator: Path | None = None) -> None:
    """The shared body of toy, train and textgen: --dry-run prints what the run would do; otherwise train (or
    resume), then print the summary and where the run is."""
    from wgan_cli.torchrun import main_process
    from wgan_cli.runs import StopFlag, train_run
    from wgan_cli.ui import terminal_sinks

    if dry_run:
        show_plan(task, cfg, run)
        return
    with StopFlag() as stop:
        result = train_run(task, cfg, run, sinks=terminal_sinks(quiet, plain), should_stop=stop)
    if not main_process():   # under torchrun rank 0 reports for every rank
        return
    if result:
        typer.echo(json.dumps(rounded(result)))
    out = Path(run.out)
    typer.echo(f"run directory: {out}  (generator: {generator or out / 'generator.safetensors'})")


def show_plan(task, cfg: TrainConfig, run: RunOptions, **head) -> None:
    """--dry-run of a training command: the resolved options, the model as far as it is known without the data,
    the device and the number of ranks, as JSON (`head` first). Nothing is read or written."""
    from wgan_cli.runs import preview

    typer.echo(json.dumps({**head, **preview(task, cfg, run)}, indent=2))


def with_config(ctx: typer.Context, config: Path | None, command: str, section: str, cfg: TrainConfig,
                run: RunOptions, opts):
    """--config FILE: the file's options under the flags given on the command line (configfile.py)."""
    if config is None:
        return cfg, run, opts
    from wgan_cli import configfile

    cfg, run, opts, notes = configfile.apply(ctx, config, command, section, cfg, run, opts)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    return cfg, run, opts


def version_callback(value: bool):
    if value:
        typer.echo(f"wgan {__version__}")
        raise typer.Exit()
