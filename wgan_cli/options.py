"""The command line's parameters. The options of the records (config.py: TrainConfig, RunOptions, ToyOptions,
ImageOptions, TextOptions, ScoreRequest) are declared once, on the records' fields (fields.py), and `with_records`
turns them into Typer parameters; the record's default is the parameter's default. What is declared here is
what belongs to a command and no record: where a command writes, its mode switches, its arguments, and the
flags every command shares (--config, --dry-run, --quiet, --plain, --debug).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from pathlib import Path
from typing import Annotated, Optional

import typer

from wgan_cli import fields
from wgan_cli.bounds import Range
from wgan_cli.config import Device, ToyFigure


# ---- paths ---------------------------------------------------------------------------------------------------
def _path_text(value) -> str:
    """A path option's value as given. An empty one (an unset shell variable) is refused: it would silently
    mean the current folder, and the command would read it or write run files and samples there."""
    if isinstance(value, str) and value == "":
        raise typer.BadParameter("an empty path (an unset shell variable?); for the current folder give .")
    return str(value)


def _path(value) -> Path:
    return Path(_path_text(value))


# every option that names a path: typer.Option(..., **PATH); PATH_TEXT where the value can also be a name
# (--ref, --resume); *_ARG for arguments (their metavar is their name)
PATH = {"parser": _path, "metavar": "<path>"}
PATH_TEXT = {"parser": _path_text, "metavar": "<text>"}
PATH_ARG = {"parser": _path}
PATH_TEXT_ARG = {"parser": _path_text}


# ---- the records' options --------------------------------------------------------------------------------------
def _parameter(field: dataclasses.Field, opt: fields.Opt, hint) -> inspect.Parameter:
    """One declared field -> a Typer parameter with the record's default, flag and help."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (types.UnionType, typing.Union) else (hint,)
    optional = type(None) in args
    base = opt.choices or (Path if opt.path else next(a for a in args if a is not type(None)))
    default = field.default
    if default is not None and opt.choices is not None:
        default = opt.choices(default)
    elif default is not None and opt.path:
        default = Path(default)
    shown = f" \\[default: {opt.shown_default}]" if opt.shown_default else ""
    allowed = f" \\[{opt.range.describe()}]" if opt.range is not None else ""
    paths = PATH if opt.path else PATH_TEXT if opt.path_or_name else {}
    info = typer.Option(*opt.flags, help=opt.help + allowed + shown,
                        show_default=opt.shown_default is None and field.default not in (None, ""), **paths)
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[Optional[base] if optional else base, info])


def _offered(command: str, record_class) -> list[tuple[dataclasses.Field, fields.Opt]]:
    return [(f, o) for f, o in fields.declared(record_class)
            if o.cli and (o.commands is None or command in o.commands)]


def _plain(value):
    """A parameter's value as the record keeps it: a path as a string (Enums are StrEnums: strings already)."""
    return str(value) if isinstance(value, Path) else value


def with_records(command: str, **records):
    """Decorate a command whose parameters named in `records` (e.g. cfg=TrainConfig) are records: the command line
    gets one option per declared field, and the function receives the records built from them."""

    def decorate(fn):
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(fn, eval_str=True).parameters.values()
               if p.name not in records]
        hints = {name: typing.get_type_hints(cls) for name, cls in records.items()}
        made = {name: [_parameter(f, o, hints[name][f.name]) for f, o in _offered(command, cls)]
                for name, cls in records.items()}
        params = own[:1] + [p for ps in made.values() for p in ps] + own[1:]   # after ctx, before the flags
        names = [p.name for p in params]
        assert len(names) == len(set(names)), f"{command}: an option is declared twice"

        @functools.wraps(fn)
        def wrapper(**kw):
            built = {name: cls(**{p.name: _plain(kw.pop(p.name)) for p in made[name]})
                     for name, cls in records.items()}
            return fn(**kw, **built)

        del wrapper.__wrapped__   # Typer reads the signature below, not fn's
        wrapper.__signature__ = inspect.Signature(params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


# ---- every command ---------------------------------------------------------------------------------------------
ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", help="Read the options from a run's options.json, or a TOML/JSON file of the same sections "
    "(train, run, and the command's own); flags given here override it. Unknown keys are refused.",
    show_default=False, **PATH)]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print what the command would do (the resolved options "
                                         "as JSON) and exit; nothing is read or written.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr (the result still goes to "
                                        "stdout, and metrics.jsonl is still written).")]
PlainOpt = Annotated[Optional[bool], typer.Option("--plain/--rich", help="Force plain log lines or the live "
                                                  "Rich display. \\[default: Rich on a terminal]", show_default=False)]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors (same exit codes).")]

# ---- wgan toy ----------------------------------------------------------------------------------------------
ToyOutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run directory (or figure directory with --figure).",
                                         **PATH)]
FigureOpt = Annotated[Optional[ToyFigure], typer.Option(
    help="Make a paper figure instead of one run: value-surface (Figure 1a: clipping vs GP on all three "
         "datasets) or gradnorm (Figure 1b).", show_default=False)]

# ---- wgan train ---------------------------------------------------------------------------------------------
TrainOutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run directory.", **PATH)]

# ---- wgan prepare ----------------------------------------------------------------------------------------------
PrepareSrcArg = Annotated[Path, typer.Argument(help="A folder of images (recursively; one subfolder per class gives "
                                                    "labels).", show_default=False, **PATH_ARG)]
PrepareOutOpt = Annotated[Path, typer.Option("--out", "-o", help="The prepared set's folder (images.npy, labels.npy, "
                                             "manifest.json); an older prepared set there is replaced.",
                                             show_default=False, **PATH)]
PrepareSizeOpt = Annotated[int, typer.Option(help="Images are size x size pixels.", min=1, max=4096)]
FitOpt = Annotated[str, typer.Option(help="crop: scale the shorter side to --size and cut the centre; pad: scale the "
                                          "longer side and fill the rest with --background.")]
BackgroundOpt = Annotated[str, typer.Option(help="Colour under transparent pixels and around padded images: white, "
                                                 "black, gray or #RRGGBB.")]
PrepareStrictOpt = Annotated[bool, typer.Option("--strict", help="Stop at the first image file that cannot be read, "
                                                "naming it (default: skip it and report it).")]
ChannelsOpt = Annotated[str, typer.Option(help="auto (1 when every image is grayscale, else 3), 1 or 3.")]
PrepareWorkersOpt = Annotated[Optional[int], typer.Option(help="Processes decoding in parallel. \\[default: the CPUs "
                                                               "this process may use]", min=1, show_default=False)]

# ---- wgan sample (its own seed and device: the samples drawn, cpu by default) ------------------------------------
CkptArg = Annotated[Path, typer.Argument(help="A .safetensors checkpoint (generator or train-state).", **PATH_ARG)]
SampleNOpt = Annotated[int, typer.Option("-n", help="Number of samples.")]
SampleOutOpt = Annotated[Optional[Path], typer.Option(
    "--out", "-o", help="Output: .csv/.npy for toy points; for images grid.png (one grid), DIR/ (one PNG per "
    "sample), samples.npz (uint8 N,H,W,C under 'images', plus 'labels' for a conditional model), or with "
    "--interpolate walk.gif / walk.mp4. "
    "\\[default: samples.csv for toy, samples.png for image checkpoints]", show_default=False, **PATH)]
EmaOpt = Annotated[bool, typer.Option("--ema", help="Use the EMA generator, where the run kept one.")]
ClassOpt = Annotated[Optional[int], typer.Option("--class", help="Conditional models: draw only this class "
                                                 "(default: random classes).", show_default=False)]
InterpolateOpt = Annotated[bool, typer.Option("--interpolate", help="Images: rows of 8 along straight lines "
                                              "between random latent points; with -o walk.gif (or .mp4, with "
                                              "ffmpeg) a smooth closed loop of -n frames through random latent "
                                              "points, one every 16 frames.")]
FpsOpt = Annotated[float, typer.Option(help="Frames per second of a .gif / .mp4 latent walk, 0.1 to 100.")]
SampleSeedOpt = Annotated[int, typer.Option(help="Random seed of the latents drawn.")]
SampleDeviceOpt = Annotated[Device, typer.Option(help="Where to run: auto picks cuda, then mps, then cpu.")]
SeedsOpt = Annotated[Optional[str], typer.Option(
    help="Draw one sample per seed, e.g. 0-99,200: a seed gives the same sample whatever else is drawn (instead "
         "of -n and --seed; `-n N --seed S` draws the seeds S .. S+N-1). 32-bit seeds.",
    show_default=False)]
LatentsOpt = Annotated[Optional[Path], typer.Option(
    "--latents", help="Draw from these latents: an .npy of float (N, z_dim), or an .npz with 'z' (and 'labels') as "
    "--save-latents writes it (instead of -n, --seed, --seeds).", show_default=False)]
SaveLatentsOpt = Annotated[Optional[Path], typer.Option(
    "--save-latents", help="Also write the latents used: z.npy (z only) or z.npz ('z', 'seeds', and 'labels' for "
    "a conditional model).", show_default=False)]
TruncationOpt = Annotated[Optional[float], typer.Option(
    help="Truncation trick: redraw every latent component beyond |T| (T >= 0.05; smaller T: less variety, more "
         "typical samples). \\[default: none]", show_default=False)]
ShowSeedsOpt = Annotated[bool, typer.Option("--show-seeds", help="Grids: write each image's seed under it.")]

# ---- wgan export ---------------------------------------------------------------------------------------------
ExportOutOpt = Annotated[Path, typer.Option("--out", "-o", help="OUT.onnx (ONNX, opset 18, dynamic batch) or OUT.pt2 "
                                            "(torch.export).", show_default=False)]
HeadOpt = Annotated[Optional[str], typer.Option(
    help="What the exported model returns: float (the model's own range: images B,C,H,W in [-1, 1] or [0, 1]; toy "
         "points; text probabilities), uint8 (images B,H,W,C exactly as `wgan sample` saves them), uint8-nchw "
         "(torch-fidelity's generator input), ids (text: character indices). \\[default: float]",
    show_default=False)]

# ---- wgan score ----------------------------------------------------------------------------------------------
ScoreInputArg = Annotated[Optional[str], typer.Argument(
    help="A generator checkpoint (.safetensors), a folder of images, or an .npz / .npy of uint8 images (key "
         "'images' in an .npz). Optional with --save-stats.", show_default=False, **PATH_TEXT_ARG)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]

# ---- wgan textgen --------------------------------------------------------------------------------------------
TextCkptOpt = Annotated[Optional[Path], typer.Option("--ckpt", help="Generate from this text checkpoint instead "
                                                     "of training.", show_default=False, **PATH)]
TextOutOpt = Annotated[Optional[Path], typer.Option("--out", help="Training: the run directory \\[default: "
                       "runs/textgen]. Generation: write the lines to this file \\[default: stdout].",
                       show_default=False, **PATH)]
LinesOpt = Annotated[int, typer.Option("-n", help="Generation: number of lines.")]
EvalFileOpt = Annotated[Optional[Path], typer.Option("--eval", help="Generation: report the JS divergences (n = "
                        "1..4, bits) of 640 samples against the lines of this text.", show_default=False, **PATH)]
# ---- wgan report ---------------------------------------------------------------------------------------------
ReportRunsArg = Annotated[list[str], typer.Argument(
    help="Run directories (the --out folders of toy, train, textgen; finished or still running), e.g. SWEEP/*.",
    show_default=False, **PATH_TEXT_ARG)]
ReportOutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for the report (created if needed).",
                                            **PATH)]
Table2Opt = Annotated[Optional[str], typer.Option(
    "--table2", help="Also count Table 2 (Section 5.1) on this final metric (is, fid, kid ...): per threshold, "
    "the architectures where only GAN, only WGAN-GP, both or neither succeeded; and Appendix C's gp vs lp "
    "count.", show_default=False)]
ThresholdsOpt = Annotated[Optional[str], typer.Option(
    help="Table 2's thresholds: --thresholds 1 3 5 7 9 (or 1,3,5,7,9).", show_default=False)]
WATCH_SECONDS = 10.0   # `--watch` alone (command.fill_optional_values gives a bare flag this value)
WATCH_RANGE = Range(0.1, 86_400, example="--watch 10")   # seconds between looks at the runs: a tenth to a day
WatchOpt = Annotated[Optional[float], typer.Option(
    "--watch", metavar="[SECONDS]", help=f"Keep the report up to date while the runs train: look every SECONDS "
    f"(default {WATCH_SECONDS:g}), rewrite it when a run logged more, the page reloading itself while any run "
    "is going; stops when every run has ended, or on Ctrl-C (exit 130) with a complete page. "
    f"\\[{WATCH_RANGE.describe()}]", show_default=False)]
OPTIONAL_VALUES = {"--watch": f"{WATCH_SECONDS:g}"}   # flags whose value may be left out, and what it then is
BelowOpt = Annotated[Optional[bool], typer.Option(
    "--below/--above", help="Success is a final metric below (FID, KID) or above (IS) the threshold. "
    "\\[default: the metric's own direction]", show_default=False)]
