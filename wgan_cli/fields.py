"""One declaration per option: a field of a frozen record (config.py) carries its flag, help text, allowed range
and default, and everything else reads it from there:

- the command line: options.py turns each declared field into a Typer parameter (the record's default is the
  parameter's default, so a default is written once);
- the range check of every source (a flag, a preset, a `--config` file): `check` below, before anything is read or
  written;
- the checkpoint schema's bounds for the model sizes that are options (checkpoint_schema.py reads `range_of`);
- `--dry-run` and options.json show the records themselves.

A field declared with `option(...)` is an option; a plain field is internal (set by code or a config file only).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from wgan_cli.bounds import Range, check_value

KEY = "wgan.option"   # the dataclass field metadata key


@dataclass(frozen=True)
class Opt:
    """What the command line and the checks need to know about one field."""

    help: str
    flags: tuple[str, ...] = ()            # () -> --the-field-name; "--a/--b" for an on/off pair
    range: Range | None = None             # numeric: checked for every source of the value
    example: str = ""                      # a good value, shown in the hint of a refused one
    choices: type[enum.Enum] | None = None  # the Enum whose values the command line offers
    shown_default: str | None = None       # for a default resolved later (None in the record): its description
    commands: tuple[str, ...] | None = None  # only these commands offer it (None: every command of the record)
    path: bool = False                     # a file or folder (the command line shows PATH; the record keeps a str)
    path_or_name: bool = False             # a path, or a name (--resume auto, --ref cifar10:train): never empty
    cli: bool = True                       # False: no flag (set by a config file or by code only)

    def flag(self, name: str) -> str:
        return next((f.split("/")[0] for f in self.flags if f.startswith("--")), "--" + name.replace("_", "-"))


def option(default=None, help: str = "", **spec) -> dataclasses.Field:
    """A record field that is an option: its default, and how the command line shows and checks it."""
    return dataclasses.field(default=default, metadata={KEY: Opt(help=help, **spec)})


def declared(record_or_class) -> list[tuple[dataclasses.Field, Opt]]:
    """The option fields of a record (or its class), in declaration order."""
    return [(f, f.metadata[KEY]) for f in dataclasses.fields(record_or_class) if KEY in f.metadata]


def spec_of(record_or_class, name: str) -> Opt:
    return next(o for f, o in declared(record_or_class) if f.name == name)


def flag(record_or_class, name: str) -> str:
    """The flag of a field (--lambda for gp_weight); a field without a declaration: its kebab-case name."""
    found = [o for f, o in declared(record_or_class) if f.name == name]
    return found[0].flag(name) if found else "--" + name.replace("_", "-")


def range_of(record_class, name: str) -> Range:
    allowed = spec_of(record_class, name).range
    assert allowed is not None, f"{record_class.__name__}.{name} has no range"
    return allowed


def check(record) -> None:
    """Every bounded field of a record against its range: a UsageError (exit 2) naming the flag and the range."""
    for f, opt in declared(record):
        if opt.range is not None:
            name = opt.flag(f.name)
            check_value(name, getattr(record, f.name), opt.range, f"{name} {opt.example}" if opt.example else "")


def check_all(*records) -> None:
    """The records of a command (toy, train, textgen, score), before anything is read or written."""
    for record in records:
        check(record)
