"""Reading run directories (`toy`, `train`, `textgen`; finished, stopped or still running) and what a run is.

`load_run(path)` gives a Run: its options (options.json with the options.N.json of resumed segments merged over
it) and its metrics.jsonl rows, each with the active wall-clock seconds at that row. `method`, `architecture`,
`dataset` say what the run trained; `metric_names`, `stat_names`, `final_value` what it logged.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from wgan_cli.bounds import is_number
from wgan_cli.errors import DataError, UsageError
from wgan_cli.locking import LOCK_NAME, read_owner
from wgan_cli.ui import read_jsonl

OPTIONS_RE = re.compile(r"^options(?:\.(\d+))?\.json$")
# bookkeeping, not statistics
ROW_KEYS = {"event", "step", "time", "seconds", "active_seconds", "total", "kind", "path"}
CALLBACK_EVENTS = {"saved", "eval", "artifact"}   # rows written by callbacks between training iterations
STAT_ORDER = ("w_dist", "loss_d", "gp", "loss_g")
HIGHER_IS_BETTER = {"is", "modes_covered", "min_mode_share"}   # every other metric: lower is better
NOT_SUMMARISED = re.compile(r"(_std|^kid_subset_size)$")   # spreads and sizes that accompany a metric
# the sections of options.json the report reads (each an object of option -> value)
SECTIONS = ("train", "run", "toy", "image", "textgen", "model")


# ---- loading ----------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run directory, read. `rows` are the metrics.jsonl rows that still describe the run (see load_run),
    each with "active_seconds" (the active wall-clock seconds at that row) and "seconds" (the same less the
    time spent in checkpoints, evaluations and sample grids: training time)."""

    path: Path
    options: dict
    rows: list
    seconds: float            # active wall-clock seconds in all
    segments: int             # 1 + the number of times the run was resumed
    training_seconds: float   # `seconds` less the time spent in callbacks

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def command(self) -> str:
        return self.options.get("command", "?")

    def event_rows(self, event: str) -> list[dict]:
        return [r for r in self.rows if r.get("event") == event]

    @property
    def iterations(self) -> int:
        """Generator iterations done, as far as the log tells."""
        return max((r.get("step", 0) for r in self.rows if r.get("event") in ("step", "start", "eval")), default=0)

    @property
    def target(self) -> int | None:
        return self.options.get("train", {}).get("iters")

    def series(self, key: str, event: str) -> tuple[list[int], list[float], list[float]]:
        """(iterations, seconds, values) of a numeric `key` in rows of kind `event`."""
        rows = [r for r in self.event_rows(event) if is_number(r.get(key))]
        return [r.get("step", 0) for r in rows], [r["seconds"] for r in rows], [float(r[key]) for r in rows]


def is_run_dir(path: Path) -> bool:
    return (path / "options.json").is_file() and (path / "metrics.jsonl").is_file()


def load_run(path: str | Path) -> Run:
    """Read a run directory: options.json with options.2.json, options.3.json ... (written by resumed
    segments) merged over it in order, and the rows of metrics.jsonl (a line cut short by a crash or by a
    run still writing is skipped).

    Active wall-clock time: every `start` row opens a segment (a process that trained the run); a segment lasts
    from its `start` row's time to the time of its last row, so the time a run spent stopped between segments
    (and each process's start-up before its first row) is not counted. Rows logged before the first `start`
    row open the first segment (older logs; or the evaluation of the untrained model that `wgan textgen` logs
    just before its start row, which joins the segment that start row opens). When a segment resumes at
    iteration N, rows of earlier segments past N are dropped (those iterations were lost and redone), but the
    time spent on them still counts: it was spent. `Run.seconds` is all of it.

    Training time, a row's "seconds" (Figure 3's wall-clock axis): the active time at that row less the time
    spent in the callbacks (checkpoints, evaluations, sample grids), which would otherwise make a method that is
    scored more often look slower. A callback row (saved, eval, artifact) logged at the same iteration as the row
    before it marks the time between the two as callback time; so the time of the first callback at an
    iteration that no step row was logged at stays in (--log-every dividing --eval-every leaves none).
    """
    path = Path(path)
    _check_run_dir(path)
    options = _merged_options(path)
    rows = [row for row in read_jsonl(path / "metrics.jsonl") if _row_ok(row)]
    kept: list[dict] = []
    closed = 0.0                       # seconds in the segments before the current one
    callbacks = 0.0                    # seconds spent in callbacks so far
    seg_start = last = None            # unix times: the current segment's start and its latest row
    previous = None                    # (step, time) of the previous timed row of this segment
    segments = 0
    started = trained = False          # a start row seen; a step row seen
    for row in rows:
        t = float(row["time"]) if is_number(row.get("time")) else last   # untimed: where it stands
        if row.get("event") == "start" and not (segments == 1 and not started and not trained):
            if seg_start is not None:
                closed += last - seg_start
            kept = [r for r in kept if r.get("step", 0) <= row.get("step", 0)]   # redone after the resume
            segments += 1
            seg_start = last = t
            previous = None
        elif segments == 0:            # rows before any start row (older logs) open the first segment
            segments = 1
        if t is not None and seg_start is None:
            seg_start = last = t
        if t is not None:
            if (row.get("event") in CALLBACK_EVENTS and previous is not None and previous[0] == row.get("step", 0)
                    and t > previous[1]):
                callbacks += t - previous[1]
            previous = (row.get("step", 0), t)
            last = max(last, t)
        since = t - seg_start if t is not None else 0.0
        active = closed + max(since, 0.0)   # max: a clock set back never runs time back
        kept.append({**row, "active_seconds": active, "seconds": max(active - callbacks, 0.0)})
        started = started or row.get("event") == "start"
        trained = trained or row.get("event") == "step"
    seconds = closed + (last - seg_start if seg_start is not None else 0.0)
    return Run(path, options, kept, seconds, segments, max(seconds - callbacks, 0.0))


def _check_run_dir(path: Path) -> None:
    hint = "pass run directories: the --out folders of wgan toy, wgan train or wgan textgen"
    if not path.exists():
        raise UsageError(f"{path}: no such folder", hint)
    if not path.is_dir():
        raise UsageError(f"{path} is a file, not a run directory", hint)
    has = {name: (path / name).is_file() for name in ("options.json", "metrics.jsonl")}
    if not any(has.values()):
        inside = sorted(p.name for p in path.iterdir() if p.is_dir() and is_run_dir(p))
        if inside:
            shown = ", ".join(inside[:5]) + (" ..." if len(inside) > 5 else "")
            hint = f"it holds runs ({shown}): pass those, e.g. {path / '*'}"
        raise UsageError(f"{path} is not a run directory: it holds neither options.json nor metrics.jsonl", hint)
    missing = [name for name, ok in has.items() if not ok]
    if missing:
        raise DataError(f"{path}: no {missing[0]} (a run directory holds options.json and metrics.jsonl)",
                        "the run may have stopped before it started training; run its command again, or leave "
                        "the folder out")


def _merged_options(path: Path) -> dict:
    files = sorted((int(m.group(1) or 1), p) for p in path.iterdir() if (m := OPTIONS_RE.match(p.name)))
    merged: dict = {}
    for _, file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{file}: cannot be read as JSON ({e})",
                            "the file is damaged; restore it or leave the run out") from None
        if not isinstance(data, dict):
            raise DataError(f"{file}: holds no options object", "leave the run out")
        _check_options(file, data)
        merged = _deep_merge(merged, data)
    return merged


def _check_options(file: Path, data: dict) -> None:
    """The shape the report relies on: each section an object, the command a name, the target iterations a
    whole number. Anything else is a damaged (or hand-edited) file, refused rather than half read."""
    hint = "the file is damaged; restore it (wgan writes it at the start of each run) or leave the run out"
    for key in SECTIONS:
        if key in data and not isinstance(data[key], dict):
            raise DataError(f"{file}: \"{key}\" is {type(data[key]).__name__}, not an object of options", hint)
    if "command" in data and not isinstance(data["command"], str):
        raise DataError(f"{file}: \"command\" is not a command name", hint)
    iters = data.get("train", {}).get("iters")
    if iters is not None and not (isinstance(iters, int) and not isinstance(iters, bool) and iters >= 0):
        raise DataError(f"{file}: \"train.iters\" is {iters!r}, not a number of iterations", hint)


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _row_ok(row) -> bool:
    """A row the report can use: an object whose bookkeeping fields have their types (event, kind and path
    strings; step a finite count; time, where there is one, a finite number). Rows that parse as JSON but have
    another shape (a damaged or hand-edited log) are skipped, as lines that do not parse are."""
    if not isinstance(row, dict):
        return False
    step, t = row.get("step", 0), row.get("time")
    return (all(isinstance(row.get(k, ""), str) for k in ("event", "kind", "path"))
            and is_number(step) and math.isfinite(step) and step >= 0
            and (t is None or is_number(t) and math.isfinite(t)))


def run_is_going(path: Path) -> bool:
    """Whether a training command is still writing the run. While it runs, its lock file (RUN/.lock) names it
    (pid, host); when it exits, however it ends (finished, stopped, diverged, an error), it empties the file. A
    killed process cannot empty it: on this host the pid is asked whether it is still alive; a process on
    another host cannot be asked and counts as going."""
    info = read_owner(path / LOCK_NAME)
    if not info:
        return False
    if info.get("host") != socket.gethostname():
        return True
    pid = info.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)   # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, run by another user
        return True
    except OSError:
        return False
    return True


def canon(v) -> str:
    return json.dumps(v, sort_keys=True)


# ---- what a run is --------------------------------------------------------------------------------------


def method(run: Run) -> str:
    """wgan-gp, wgan-lp, wgan-clip, gan, lsgan ...: the objective, with the penalty where there is one."""
    train = run.options.get("train", {})
    objective, penalty = train.get("objective", "?"), train.get("penalty")
    if objective == "wgan" or penalty not in (None, "none"):
        return f"{objective}-{penalty or 'none'}"
    return objective


def architecture(run: Run) -> dict:
    """The model spec of options.json ("model", written by `wgan train`); toy and text runs record their
    widths in their own options, from which the same spec is made."""
    if "model" in run.options:
        spec = dict(run.options["model"])
    elif run.command == "toy":
        toy = run.options.get("toy", {})
        spec = {"arch": "toy-mlp", "dim": toy.get("dim"), "depth": toy.get("depth")}
    elif run.command == "textgen":
        text = run.options.get("textgen", {})
        spec = {"arch": "text-resnet", "dim": text.get("dim"), "seq_len": text.get("seq_len")}
    else:
        spec = {"arch": run.options.get("image", {}).get("arch", "?")}
    seed = run.options.get("image", {}).get("arch_seed", spec.get("arch_seed"))
    if seed is not None:
        spec["arch_seed"] = seed
    return spec


def architecture_name(run: Run) -> str:
    spec = architecture(run)
    name = str(spec.get("arch", "?"))
    if spec.get("variant") not in (None, "default"):
        name += f"/{spec['variant']}"
    if spec.get("arch_seed") is not None:
        return f"{name} seed {spec['arch_seed']}"
    return name + (f" dim {spec['dim']}" if spec.get("dim") is not None else "")


def dataset(run: Run) -> str:
    o = run.options
    return str(o.get("image", {}).get("dataset") or o.get("toy", {}).get("dataset")
               or o.get("textgen", {}).get("corpus") or "?")


def metric_names(runs: list[Run]) -> list[str]:
    """Numeric keys of evaluation rows, over all runs, in first-seen order."""
    names: dict = {}
    for run in runs:
        for row in run.event_rows("eval"):
            for k, v in row.items():
                if k not in ROW_KEYS and is_number(v):
                    names[k] = None
    return list(names)


def stat_names(runs: list[Run]) -> list[str]:
    found = {k for run in runs for row in run.event_rows("step") for k, v in row.items()
             if k not in ROW_KEYS and is_number(v)}
    return [k for k in STAT_ORDER if k in found] + sorted(found - set(STAT_ORDER))


def final_value(run: Run, metric: str) -> float | None:
    """The last logged value of `metric` (from evaluation rows, else from training statistics)."""
    for event in ("eval", "step"):
        _, _, values = run.series(metric, event)
        if values:
            return values[-1]
    return None
