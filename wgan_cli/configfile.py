"""`--config FILE` for the training commands: the options of a run read back from a file.

The file is an options.json that a run wrote, or a TOML or JSON file of the same shape:

    command = "toy"              # optional; when present it must name the command that reads the file
    [train]                      # TrainConfig's fields: objective, penalty, gp_weight (--lambda), lr, betas, iters ...
    [run]                        # RunOptions' fields: out, device, resume, log_every, save_every, tensorboard
    [toy]                        # the command's own section: "toy", "image" (wgan train) or "textgen"

Keys are the records' field names as options.json writes them (`gp_weight` for --lambda, `clip_value` for
--clip-value). Sections only: no top-level option keys, since options.json's top level also holds keys that only
describe the run ("device", the resolved device, means something else than run.device). A file with a "command"
key (every options.json) may hold those descriptive keys - "device", "ranks", "model", "data", "size", "corpus_lines",
"vocab_size" - and they are ignored. Any other key is refused with its name, before anything is read or written.
Values are checked as the flags' values are (types, ranges, choices); JSON null (or leaving the key out) means the
option's default.

Precedence: a flag given on the command line (or through the environment) > the file > presets and defaults. The
file's values count as given: an options.json holds resolved values (the method's optimiser among them), so
re-running it gives the identical run, and a flag changes that one option only. `--penalty clip` over a WGAN-GP
run's options.json therefore keeps its Adam settings; a note says so, and names the keys to drop from the file
(or to set on the command line) for the new method's own defaults.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import tomllib
import types
import typing
from pathlib import Path

from wgan_cli import fields
from wgan_cli.bounds import check_value, is_number
from wgan_cli.config import OPTIM_KEYS, RunOptions, TrainConfig
from wgan_cli.errors import UsageError

RENAMED = {("image", "eval_n"): "n_eval"}   # (section, the key an older options.json wrote) -> the field now
# recorded by a run, not options
DESCRIPTIVE = ("device", "ranks", "model", "data", "size", "corpus_lines", "vocab_size")
METHOD_KEYS = ("objective", "penalty", "preset")   # options whose defaults depend on each other


def read(path: str | Path) -> dict:
    """A TOML (.toml) or JSON file -> its top-level table."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--config {path}: cannot read it ({e.strerror or e})",
                         "give an options.json of a run, or a .toml / .json file of options") from None
    except UnicodeDecodeError:
        raise UsageError(f"--config {path}: not UTF-8 text", "give an options.json, or a .toml / .json file") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise UsageError(f"--config {path}: not valid {kind} ({e})",
                         "TOML for a .toml file, JSON for any other name") from None
    except RecursionError:   # both parsers recurse per level of nesting; options are two levels deep
        raise UsageError(f"--config {path}: nested too deeply to be a file of options",
                         "sections hold plain values: see `--dry-run` for the shape") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: the file must hold a table of sections", "see `--dry-run` for the shape")
    return data


# ---- values -------------------------------------------------------------------------------------------------
def _kinds(hint) -> set[str]:
    """A field's type hint -> the JSON kinds it takes: int, float, str, bool, pair, null."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return set().union(*(_kinds(a) for a in typing.get_args(hint)))
    if hint is type(None):
        return {"null"}
    if typing.get_origin(hint) is tuple:
        return {"pair"}
    return {hint.__name__}


def _fits(value, kinds: set[str]) -> bool:
    if value is None:
        return "null" in kinds
    if isinstance(value, bool):
        return "bool" in kinds
    if isinstance(value, int):
        return bool(kinds & {"int", "float"})
    if isinstance(value, float):
        return "float" in kinds
    if isinstance(value, str):
        return "str" in kinds
    if isinstance(value, (list, tuple)):
        return "pair" in kinds and len(value) == 2 and all(is_number(v) for v in value)
    return False


KIND_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
              "pair": "two numbers", "null": "null"}


def _value(ctx, record, name: str, value, hint, where: str):
    """The file's value of one field, checked as its flag's value is (type, choices, the declared range), in the
    record's own type."""
    kinds = _kinds(hint)
    if not _fits(value, kinds):
        wanted = " or ".join(KIND_WORDS[k] for k in sorted(kinds))
        raise UsageError(f"{where}: {value!r} is not {wanted}", "fix the value, or drop the key for the default")
    if value is None:
        return None
    param = next((p for p in ctx.command.params if p.name == name), None)
    if param is not None:   # the flag's own checks: ranges (--iters >= 1), choices (--penalty gp|lp|clip|none)
        try:
            value = param.process_value(ctx, value)
        except Exception as e:   # click's BadParameter (typer vendors click: its class is not importable here)
            message = e.format_message() if hasattr(e, "format_message") else str(e)
            raise UsageError(f"{where}: {message}", f"see `{ctx.command_path} --help` for --{name.replace('_', '-')}"
                             ) from None
    declared = [o for f, o in fields.declared(record) if f.name == name and o.range is not None]
    if declared:
        check_value(where, value, declared[0].range, f"{declared[0].flag(name)} {declared[0].example}")
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, Path):
        value = str(value)
    if "pair" in kinds and isinstance(value, (list, tuple)):
        return (float(value[0]), float(value[1]))
    if "float" in kinds and "int" not in kinds and is_number(value):
        return float(value)
    return value


# ---- merging ------------------------------------------------------------------------------------------------
def given_on_command_line(ctx) -> set[str]:
    """The command's parameters whose values came from the command line or the environment, not the defaults."""
    return {name for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", "") in ("COMMANDLINE", "ENVIRONMENT")}


def apply(ctx, path: str | Path, command: str, section: str, cfg: TrainConfig, run: RunOptions, opts):
    """Replace the records' fields by the file's values, except where a flag was given on the command line.
    Returns (cfg, run, opts, notes)."""
    data = read(path)
    for (name, old), new in RENAMED.items():   # an options.json written before a field was renamed
        if isinstance(data.get(name), dict) and old in data[name] and new not in data[name]:
            data[name][new] = data[name].pop(old)
    records = {"train": cfg, "run": run, section: opts}
    written_by = data.get("command")
    if written_by is not None and written_by != command:
        raise UsageError(f"--config {path} holds the options of `wgan {written_by}`, not `wgan {command}`",
                         f"use it with `wgan {written_by} --config {path}`")
    ignored = {"command", *(DESCRIPTIVE if written_by is not None else ())}
    fields = {name: {f.name: f for f in dataclasses.fields(rec)} for name, rec in records.items()}
    unknown = [key for key, value in data.items()
               if key not in ignored and (key not in records or not isinstance(value, dict))]
    unknown += [f"{name}.{key}" for name, rec in records.items() if isinstance(data.get(name), dict)
                for key in data[name] if key not in fields[name]]
    if unknown:
        homes = {key: name for name, fs in fields.items() for key in fs}
        misplaced = [k for k in unknown if k in homes]
        hint = (f"put {misplaced[0]} under [{homes[misplaced[0]]}]" if misplaced else
                f"the sections are {', '.join(records)}, with the fields that `wgan {command} --dry-run` shows")
        raise UsageError(f"--config {path}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}", hint)
    given = given_on_command_line(ctx)
    changed: dict[str, dict] = {}
    for name, rec in records.items():
        hints = typing.get_type_hints(type(rec))
        values = {key: _value(ctx, rec, key, value, hints[key], f"--config {path}: {name}.{key}")
                  for key, value in data.get(name, {}).items()}
        changed[name] = {k: v for k, v in values.items() if k not in given}
        records[name] = dataclasses.replace(rec, **changed[name])
    notes = method_notes(path, data, given, records)
    return records["train"], records["run"], records[section], notes


def method_notes(path, data: dict, given: set[str], records: dict) -> list[str]:
    """Say when a method option given on the command line meets the file's resolved optimiser settings."""
    flags = [k for k in METHOD_KEYS if k in given for name, rec in records.items()
             if k in data.get(name, {}) and data[name][k] != getattr(rec, k)]
    kept = [k for k in OPTIM_KEYS if data.get("train", {}).get(k) is not None and k not in given]
    if not flags or not kept:
        return []
    shown = ", ".join(f"{k} {getattr(records['train'], k)}" for k in kept)
    return [f"--{'/--'.join(flags)} from the command line keeps {path}'s {shown}: a method's defaults fill only "
            f"what neither the file nor the command line gives (drop those keys from the file, or set them as flags)"]
