"""`wgan report`: reports over run directories (`toy`, `train`, `textgen`; finished, stopped or still running).

    runs = [load_run(p) for p in paths]
    write_report(runs, "report/", table2=table2(runs, "is", [6.0, 7.0]))

writes into the folder:
  curves-iterations.png   every logged training statistic (w_dist, loss_d, gp, loss_g, it_s ...), one panel each,
                          against generator iterations; one line per run
  curves-seconds.png      the same panels against wall-clock time (Figure 3's second panel)
  metrics-<name>.png      each evaluation metric (fid, is, kid, js1..js4, w1 ...): two panels, against iterations
                          and against wall-clock time, as Figure 3; a real-data floor (js1_real ...) is dashed
  train-vs-validation.png where runs logged val_w_dist: training and validation Wasserstein estimate (Figure 5b)
  summary.md, .json       one row per run: method, architecture, iterations, minutes, last and best of each metric
  table2.md, .json        with `table2=`: Table 2 counts per threshold and the Appendix C gp-vs-lp count
  samples-<run>.gif       each image run's samples/iter-*.png grids over time
  index.html              all of it on one page: images as data: URIs, tables as HTML, no external assets
Every file is written atomically (files.atomic_path).

The package, one concept per module: runs.py (loading a run directory, what a run is), legend.py (labels
naming what differs), tables.py (the summary table), sweep.py (Table 2 and Appendix C over a sweep),
figures.py (the curves), page.py (sample GIFs and index.html), watch.py (`--watch`: the report kept up to date
while runs train); `make_report` is the `wgan report` command's body. Labels name what differs between the
runs' options; wall-clock time is active time, with the time a run spent stopped between resumed segments left
out (see `load_run`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from wgan_cli import files
from wgan_cli.errors import UsageError
from wgan_cli.outputs import json_safe
from wgan_cli.report import sweep
from wgan_cli.report.figures import curves_figure, metric_figure, validation_figure
from wgan_cli.report.legend import differing_keys, labels
from wgan_cli.report.page import MAX_GIF_FRAMES, index_html, sample_files, samples_gif
from wgan_cli.report.runs import NOT_SUMMARISED, Run, is_run_dir, load_run, metric_names
from wgan_cli.report.tables import summary, summary_markdown
from wgan_cli.report.sweep import table2, table2_markdown

__all__ = ["MAX_GIF_FRAMES", "Run", "differing_keys", "is_run_dir", "labels", "load_run", "make_report",
           "sample_files", "samples_gif", "summary", "summary_markdown", "table2", "table2_markdown", "write_report"]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "run"


def write_report(runs: list[Run], out_dir: str | Path, table2: dict | None = None,
                 refresh: float | None = None) -> dict:
    """Write the report's files (see the module docstring) into `out_dir`; returns what a `--json` caller
    prints: {"out_dir", "files": [names], "runs": summary(runs), "table2": table2}. With `refresh` (seconds)
    index.html reloads itself that often (`--watch`, while runs are going)."""
    if not runs:
        raise UsageError("no runs to report on", "pass one or more run directories")
    out = Path(out_dir)
    written: dict[str, bytes] = {}

    def put(name: str, data: bytes | str) -> None:
        data = data.encode("utf-8") if isinstance(data, str) else data
        files.write_bytes(out / name, data, "choose a writable -o folder")
        written[name] = data

    labs = labels(runs)
    rows = summary(runs)
    put("curves-iterations.png", curves_figure(runs, labs, "iterations"))
    put("curves-seconds.png", curves_figure(runs, labs, "seconds"))
    logged = metric_names(runs)
    metrics = [m for m in logged if not NOT_SUMMARISED.search(m)   # floors are drawn with their metric
               and not (m.endswith("_real") and m[:-5] in logged)]
    metric_files = {}
    for m in metrics:
        name = f"metrics-{_safe(m)}.png"
        put(name, metric_figure(runs, labs, m))
        metric_files[m] = name
    validation = validation_figure(runs, labs)
    if validation is not None:
        put("train-vs-validation.png", validation)
    # strict JSON for machines: a non-finite number (a metric of a collapsed generator) becomes null
    rows, table2 = json_safe(rows)[0], json_safe(table2)[0]
    put("summary.md", summary_markdown(rows))
    put("summary.json", json.dumps({"runs": rows}, indent=2, allow_nan=False) + "\n")
    if table2 is not None:
        put("table2.md", table2_markdown(table2))
        put("table2.json", json.dumps(table2, indent=2, allow_nan=False) + "\n")
    gifs, used = {}, set()
    for run, lab in zip(runs, labs):
        gif = samples_gif(sample_files(run, ".png"))
        if gif is None:
            continue
        base = name = f"samples-{_safe(run.name)}"
        n = 1
        while name in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name)
        put(name + ".gif", gif)
        gifs[lab] = name + ".gif"
    put("index.html", index_html(runs, labs, rows, table2, written, metric_files, gifs, refresh))   # last
    return {"out_dir": str(out), "files": sorted(written), "runs": rows, "table2": table2}


def make_report(args: list[str], out_dir: str | Path, *, table2: str | None = None, thresholds: str | None = None,
                below: bool | None = None, watch: float | None = None, say=print) -> dict:
    """`wgan report`: the run folders in `args` (with --thresholds' extra numbers, see `split_thresholds`) read,
    Table 2 counted when `table2` names a metric, the report written; returns write_report's result. With
    `watch` (seconds) the report is written again as the runs change until every run has ended (watch.py);
    the result then also holds "rewrites"."""
    runs, numbers = split_thresholds(args, thresholds)
    if table2 is None and numbers:
        raise UsageError("--thresholds needs --table2 METRIC", "e.g. --table2 is --thresholds 1 3 5 7 9")
    if table2 is not None and not numbers:
        raise UsageError("--table2 needs --thresholds", f"e.g. --table2 {table2} --thresholds 1 3 5 7 9")
    if not runs:
        raise UsageError("no run directories given", "e.g. wgan report runs/a runs/b -o report")

    def write(refresh: float | None = None) -> dict:
        loaded = [load_run(path) for path in runs]
        counted = sweep.table2(loaded, table2, numbers, None if below is None else not below) if table2 else None
        return write_report(loaded, out_dir, table2=counted, refresh=refresh)

    if watch is None:
        return write()
    from wgan_cli.report.watch import watch as keep_up

    return keep_up(write, [Path(p) for p in runs], watch, say)


def split_thresholds(args: list[str], thresholds: str | None) -> tuple[list[str], list[float]]:
    """`--thresholds 1 3 5` leaves 3 and 5 among the run arguments: with --thresholds given, an argument that is
    a number (or a comma list of numbers) and no existing path is a threshold. Returns (runs, thresholds)."""
    numbers = [float(t) for t in _numbers(thresholds)] if thresholds is not None else []
    if thresholds is not None and not numbers:
        raise UsageError(f"--thresholds {thresholds!r} is not a list of numbers", "e.g. --thresholds 1 3 5 7 9")
    runs = []
    for arg in args:
        if thresholds is not None and not Path(arg).exists() and _numbers(arg):
            numbers += [float(t) for t in _numbers(arg)]
        else:
            runs.append(arg)
    bad = [t for t in numbers if not math.isfinite(t)]
    if bad:
        raise UsageError(f"--thresholds {bad[0]:g} is not a finite number", "e.g. --thresholds 1 3 5 7 9")
    return runs, numbers


def _numbers(text: str) -> list[str]:
    """'1,3.5' -> ['1', '3.5']; [] when any part is not a number."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        [float(p) for p in parts]
    except ValueError:
        return []
    return parts
