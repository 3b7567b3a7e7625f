"""Reports over run directories (`toy`, `train`, `textgen`; finished, stopped or still running), as a library.

    runs = [load_run(p) for p in paths]
    write_report(runs, "report/", table2=table2(runs, "is", [6.0, 7.0], higher_is_better=True))

writes into the folder:
  curves-iterations.png   every logged training statistic (w_dist, loss_d, gp, loss_g, it_s ...), one panel each,
                          against generator iterations; one line per run
  curves-seconds.png      the same panels against wall-clock time (Figure 3's second panel)
  metrics-<name>.png      each evaluation metric (fid, is, kid, js1..js4, w1 ...): two panels, against iterations
                          and against wall-clock time, as Figure 3; a real-data floor (js1_real ...) is dashed
  summary.md, .json       one row per run: method, architecture, iterations, minutes, last and best of each metric
  table2.md, .json        with `table2=`: Table 2 counts per threshold and the Appendix C gp-vs-lp count
  samples-<run>.gif       each image run's samples/iter-*.png grids over time
  index.html              all of it on one page: images as data: URIs, tables as HTML, no external assets
Each file is written to a temporary file in the same folder and renamed over the target (os.replace).

Labels name what differs between the runs' options (see `labels`); wall-clock time is active time, with the
time a run spent stopped between resumed segments left out (see `load_run`).
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import math
import os
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from wgan_cli.errors import DataError, OutputError, UsageError

OPTIONS_RE = re.compile(r"^options(?:\.(\d+))?\.json$")
SAMPLE_RE = re.compile(r"^iter-(\d+)\.(png|txt)$")
ROW_KEYS = {"event", "step", "time", "seconds", "total", "kind", "path"}   # bookkeeping, not statistics
STAT_ORDER = ("w_dist", "loss_d", "gp", "loss_g")
HIGHER_IS_BETTER = {"is", "modes_covered", "min_mode_share"}   # every other metric: lower is better
NOT_SUMMARISED = re.compile(r"(_std|^kid_subset_size)$")   # spreads and sizes that accompany a metric
MAX_GIF_FRAMES = 50


# ---- loading ----------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run directory, read. `rows` are the metrics.jsonl rows that still describe the run (see load_run),
    each with "seconds": the active wall-clock seconds at that row."""

    path: Path
    options: dict
    rows: list
    seconds: float    # active wall-clock seconds in all
    segments: int     # 1 + the number of times the run was resumed

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
        rows = [r for r in self.event_rows(event) if _is_number(r.get(key))]
        return [r.get("step", 0) for r in rows], [r["seconds"] for r in rows], [float(r[key]) for r in rows]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_run_dir(path: Path) -> bool:
    return (path / "options.json").is_file() and (path / "metrics.jsonl").is_file()


def load_run(path: str | Path) -> Run:
    """Read a run directory: options.json with options.2.json, options.3.json ... (written by resumed
    segments) merged over it in order, and the rows of metrics.jsonl (a line cut short by a crash or by a
    run still writing is skipped).

    Wall-clock seconds: every `start` row opens a segment (a process that trained the run); a segment lasts
    from its `start` row's time to the time of its last row. A row's "seconds" is the length of all earlier
    segments plus the time since its own segment's start, so the time a run spent stopped between segments
    (and each process's start-up before its first row) is not counted. Rows logged before the first `start`
    row (older logs) open the first segment. When a segment resumes at iteration N, rows of earlier segments
    past N are dropped (those iterations were lost and redone), but the time spent on them still counts: it
    was spent.
    """
    path = Path(path)
    _check_run_dir(path)
    options = _merged_options(path)
    rows = _read_rows(path / "metrics.jsonl")
    kept: list[dict] = []
    closed = 0.0                       # seconds in the segments before the current one
    seg_start = last = None            # unix times: the current segment's start and its latest row
    segments = 0
    for row in rows:
        t = float(row["time"]) if _is_number(row.get("time")) else last   # untimed: where it stands
        if row.get("event") == "start":
            if seg_start is not None:
                closed += last - seg_start
            kept = [r for r in kept if r.get("step", 0) <= row.get("step", 0)]   # redone after the resume
            segments += 1
            seg_start = last = t
        elif segments == 0:            # rows before any start row (older logs) open the first segment
            segments = 1
        if t is not None and seg_start is None:
            seg_start = last = t
        if t is not None:
            last = max(last, t)
        since = t - seg_start if t is not None else 0.0
        kept.append({**row, "seconds": closed + max(since, 0.0)})   # max: a clock set back never runs time back
    seconds = closed + (last - seg_start if seg_start is not None else 0.0)
    return Run(path, options, kept, seconds, segments)


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
        merged = _deep_merge(merged, data)
    return merged


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_rows(path: Path) -> list[dict]:
    rows = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue   # a line cut short by a crash, or being written right now
                if isinstance(row, dict) and _is_number(row.get("step", 0)):
                    rows.append(row)
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror})", "check the file's permissions") from None
    return rows


# ---- labels -----------------------------------------------------------------------------------------------

# Options that never change what a run learns or how it compares: where it writes, how often it logs.
IGNORED_KEYS = {"out", "resume", "device", "log_every", "save_every", "sample_every", "eval_every", "plot_every",
                "workers", "data_dir", "download", "strict", "output", "where"}
# Keys shown first when several differ (the method, then the architecture, the data, the hyperparameters).
PRIORITY = ["command", "train.objective", "train.penalty", "image.arch", "model.arch", "image.arch_seed",
            "model.arch_seed", "image.dataset", "toy.dataset", "textgen.corpus", "image.variant",
            "image.critic_norm", "model.critic_norm", "image.dim", "model.dim", "toy.dim", "textgen.dim",
            "toy.depth", "image.size", "train.lr", "train.gp_weight", "train.n_critic", "train.batch_size",
            "train.optimizer", "train.betas", "train.seed", "train.iters"]


def flatten(options: dict, prefix: str = "") -> dict:
    """{"train": {"lr": 1e-4}} -> {"train.lr": 1e-4}; lists stay values."""
    out = {}
    for k, v in options.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def differing_keys(runs: list[Run]) -> list[str]:
    """Dotted option keys whose values differ between the runs (ignored keys left out), most telling first."""
    flat = [flatten(r.options) for r in runs]
    keys = {k for f in flat for k in f if k.rsplit(".", 1)[-1] not in IGNORED_KEYS}
    differ = [k for k in keys if len({_canon(f.get(k, "<absent>")) for f in flat}) > 1]
    rank = {k: i for i, k in enumerate(PRIORITY)}
    return sorted(differ, key=lambda k: (rank.get(k, len(rank)), k))


def labels(runs: list[Run], all_keys: bool = False) -> list[str]:
    """One legend label per run, naming the options that tell the runs apart, e.g. "penalty=clip, lr=5e-05".

    The options are flattened to dotted keys; keys that never matter for a comparison (out, resume, device,
    the log/save/sample cadences, data paths) are dropped; of the keys whose values differ, most telling first
    (method, architecture, data, hyperparameters), a key is kept when it separates runs the kept keys do not.
    So options that follow from another (clipping brings RMSProp and lr 5e-05 with it) do not crowd the label,
    and a grid of penalty x lr shows both. `all_keys=True` keeps every differing key. A key is shown by its
    last part unless two kept keys share it. With one run or nothing differing the label is the folder name
    (with its parent's name when two folders share a name); runs whose labels still coincide (same options)
    get their folder name added, and are numbered as a last resort."""
    names = [r.name for r in runs]
    keys = differing_keys(runs)
    if len(runs) < 2 or not keys:
        return _unique(names, runs)
    flat = [flatten(r.options) for r in runs]
    kept: list[str] = []
    groups = 1
    for key in keys:
        n = len({tuple(_canon(f.get(k)) for k in [*kept, key]) for f in flat})
        if all_keys or n > groups:
            kept.append(key)
            groups = n
    last = [k.rsplit(".", 1)[-1] for k in kept]
    shown = [short if last.count(short) == 1 else k for k, short in zip(kept, last)]
    out = [", ".join(f"{s}={_fmt_value(f.get(k))}" for k, s in zip(kept, shown) if k in f) or n
           for f, n in zip(flat, names)]
    return _unique(out, runs)


def _unique(labels_: list[str], runs: list[Run]) -> list[str]:
    names = [r.name for r in runs]
    out = [f"{lab} ({n})" if labels_.count(lab) > 1 and lab != n else lab for lab, n in zip(labels_, names)]
    counts = Counter(out)
    out = [f"{r.path.resolve().parent.name}/{r.name}" if counts[lab] > 1 and lab == r.name else lab
           for lab, r in zip(out, runs)]   # one folder name in two places: say which parent
    counts, seen = Counter(out), Counter()
    for i, lab in enumerate(out):   # still the same: number them
        if counts[lab] > 1:
            seen[lab] += 1
            out[i] = f"{lab} #{seen[lab]}"
    return out


def _canon(v) -> str:
    return json.dumps(v, sort_keys=True)


def _fmt_value(v) -> str:
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ",".join(_fmt_value(x) for x in v)
    return str(v)


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
                if k not in ROW_KEYS and _is_number(v):
                    names[k] = None
    return list(names)


def stat_names(runs: list[Run]) -> list[str]:
    found = {k for run in runs for row in run.event_rows("step") for k, v in row.items()
             if k not in ROW_KEYS and _is_number(v)}
    return [k for k in STAT_ORDER if k in found] + sorted(found - set(STAT_ORDER))


def final_value(run: Run, metric: str) -> float | None:
    """The last logged value of `metric` (from evaluation rows, else from training statistics)."""
    for event in ("eval", "step"):
        _, _, values = run.series(metric, event)
        if values:
            return values[-1]
    return None


# ---- summary ----------------------------------------------------------------------------------------------


def summary(runs: list[Run]) -> list[dict]:
    """One row per run: run, label, method, architecture, dataset, iterations, minutes, status, and for each
    evaluation metric {last, last_step, best, best_step, better}; the last value of each training statistic."""
    out = []
    for run, label in zip(runs, labels(runs)):
        metrics = {}
        for name in metric_names([run]):
            if NOT_SUMMARISED.search(name):
                continue
            steps, _, values = run.series(name, "eval")
            higher = name in HIGHER_IS_BETTER
            finite = [i for i, v in enumerate(values) if math.isfinite(v)] or list(range(len(values)))
            best = (max if higher else min)(finite, key=lambda i: (values[i], -i if higher else i))   # earliest tie
            metrics[name] = {"last": values[-1], "last_step": steps[-1], "best": values[best],
                             "best_step": steps[best], "better": "higher" if higher else "lower"}
        stats = {}
        for name in stat_names([run]):
            steps, _, values = run.series(name, "step")
            stats[name] = {"last": values[-1], "last_step": steps[-1]}
        target = run.target
        done = target is not None and run.iterations >= target
        out.append({"run": run.name, "label": label, "path": str(run.path), "command": run.command,
                    "method": method(run), "architecture": architecture_name(run), "dataset": dataset(run),
                    "iterations": run.iterations, "target_iterations": target, "minutes": run.seconds / 60,
                    "segments": run.segments, "status": "finished" if done else "incomplete",
                    "metrics": metrics, "stats": stats})
    return out


def summary_markdown(rows: list[dict]) -> str:
    metrics = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
    head = ["run", "label", "method", "architecture", "iterations", "minutes"]
    for m in metrics:
        head += [f"{m} last", f"{m} best"]
    lines = [_md_row(head), _md_row(["---"] * len(head))]
    for r in rows:
        its = f"{r['iterations']}" + (f" / {r['target_iterations']}" if r["status"] != "finished" else "")
        cells = [r["run"], r["label"], r["method"], r["architecture"], its, f"{r['minutes']:.2f}"]
        for m in metrics:
            v = r["metrics"].get(m)
            cells += [_num(v["last"]), _num(v["best"])] if v else ["", ""]
        lines.append(_md_row(cells))
    stats = list(dict.fromkeys(s for r in rows for s in r["stats"]))
    if stats:
        lines += ["", "Training statistics, last logged value:", "",
                  _md_row(["run", *stats]), _md_row(["---"] * (len(stats) + 1))]
        for r in rows:
            lines.append(_md_row([r["run"], *(_num(r["stats"][s]["last"]) if s in r["stats"] else ""
                                              for s in stats)]))
    return "\n".join(lines) + "\n"


def _md_row(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _num(v) -> str:
    if v is None:
        return "n/a"   # a non-finite value, nulled for JSON
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ---- Table 2 and Appendix C -------------------------------------------------------------------------------


def table2_method(run: Run) -> str | None:
    """"gan" (objective gan), "wgan-gp" or "wgan-lp" (objective wgan with that penalty); None for the rest."""
    train = run.options.get("train", {})
    if train.get("objective") == "gan":
        return "gan"
    if train.get("objective") == "wgan" and train.get("penalty") in ("gp", "lp"):
        return f"wgan-{train['penalty']}"
    return None


def architecture_identity(run: Run) -> str:
    """What makes two runs 'the same architecture' for Table 2: the dataset and the sampled architecture's
    seed (image.arch_seed) where there is one, else the model spec without the critic's normalisation (which
    the method chooses: BatchNorm for GAN, LayerNorm under a penalty)."""
    spec = architecture(run)
    if spec.get("arch_seed") is not None:
        key = {"arch_seed": spec["arch_seed"]}
    else:
        key = {k: v for k, v in spec.items() if k not in ("critic_norm", "critic_norm_kind")}
    return _canon({"dataset": dataset(run), **key})


def table2(runs: list[Run], metric: str, thresholds, higher_is_better: bool = True) -> dict:
    """Table 2: per threshold, how many architectures succeeded with only GAN, only WGAN-GP, both, neither;
    success = the run's final `metric` beyond the threshold (above it, or below it with higher_is_better=False,
    as for FID). Appendix C: of the architectures trained with both penalties, in how many the two-sided one
    (gp) ended better than the one-sided one (lp). Runs are paired by `architecture_identity`; a method run
    twice on one architecture counts once (the run with more iterations; `duplicates` names the other)."""
    thresholds = [float(t) for t in thresholds]
    if not thresholds:
        raise UsageError("Table 2 needs at least one threshold", "e.g. --thresholds 1,2,3")
    better = (lambda a, b: a > b) if higher_is_better else (lambda a, b: a < b)
    groups: dict[str, dict[str, tuple[Run, float]]] = {}
    ignored, missing, duplicates = [], [], []
    for run in runs:
        m = table2_method(run)
        if m is None:
            ignored.append(run.name)
            continue
        value = final_value(run, metric)
        if value is None:
            missing.append(run.name)
            continue
        slot = groups.setdefault(architecture_identity(run), {})
        if m in slot:
            keep, drop = sorted([slot[m], (run, value)], key=lambda rv: rv[0].iterations, reverse=True)
            slot[m] = keep
            duplicates.append(drop[0].name)
        else:
            slot[m] = (run, value)
    if not groups:
        logged = metric_names(runs) or stat_names(runs)
        raise UsageError(f"no GAN or WGAN-GP/LP run logged {metric!r}",
                         f"choose one of the logged metrics: {', '.join(logged) or 'none yet'}")
    paired = [g for g in groups.values() if "gan" in g and "wgan-gp" in g]
    rows = []
    for t in thresholds:
        counts = {"threshold": t, "only_gan": 0, "only_wgan_gp": 0, "both": 0, "neither": 0}
        for g in paired:
            gan_ok, gp_ok = better(g["gan"][1], t), better(g["wgan-gp"][1], t)
            key = "both" if gan_ok and gp_ok else "only_gan" if gan_ok else "only_wgan_gp" if gp_ok else "neither"
            counts[key] += 1
        rows.append(counts)
    both_penalties = [g for g in groups.values() if "wgan-gp" in g and "wgan-lp" in g]
    gp_better = sum(better(g["wgan-gp"][1], g["wgan-lp"][1]) for g in both_penalties)
    lp_better = sum(better(g["wgan-lp"][1], g["wgan-gp"][1]) for g in both_penalties)
    arches = []
    for ident, g in groups.items():
        any_run = next(iter(g.values()))[0]
        arches.append({"architecture": architecture_name(any_run), "dataset": dataset(any_run), "identity": ident,
                       **{m: {"run": r.name, "value": v} for m, (r, v) in sorted(g.items())}})
    return {"metric": metric, "higher_is_better": higher_is_better, "thresholds": thresholds,
            "architectures": len(paired), "rows": rows,
            "appendix_c": {"architectures": len(both_penalties), "gp_better": gp_better, "lp_better": lp_better,
                           "ties": len(both_penalties) - gp_better - lp_better},
            "by_architecture": arches, "ignored": ignored, "missing": missing, "duplicates": duplicates}


def table2_markdown(t2: dict) -> str:
    word = "above" if t2["higher_is_better"] else "below"
    lines = [f"Table 2: success = final {t2['metric']} {word} the threshold; {t2['architectures']} architectures "
             "trained with both GAN and WGAN-GP.", "",
             _md_row(["threshold", "only GAN", "only WGAN-GP", "both", "neither"]), _md_row(["---"] * 5)]
    for r in t2["rows"]:
        lines.append(_md_row([f"{r['threshold']:g}", r["only_gan"], r["only_wgan_gp"], r["both"], r["neither"]]))
    c = t2["appendix_c"]
    lines += ["", f"Appendix C: the two-sided penalty (gp) ended better than the one-sided one (lp) on "
                  f"{c['gp_better']} of {c['architectures']} architectures (lp better on {c['lp_better']}, "
                  f"ties {c['ties']})."]
    for what in ("ignored", "missing", "duplicates"):
        if t2[what]:
            lines.append(f"{what.capitalize()}: {', '.join(t2[what])}.")
    return "\n".join(lines) + "\n"


# ---- figures ----------------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(n: int) -> list:
    cmap = _plt().get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _time_unit(runs: list[Run]) -> tuple[float, str]:
    longest = max((r.seconds for r in runs), default=0.0)
    if longest >= 3 * 3600:
        return 3600.0, "wall-clock hours"
    if longest >= 180:
        return 60.0, "wall-clock minutes"
    return 1.0, "wall-clock seconds"


def _draw(ax, runs, labs, colors, key, event, x_axis, unit):
    for run, lab, color in zip(runs, labs, colors):
        steps, secs, values = run.series(key, event)
        if not values:
            continue
        xs = steps if x_axis == "iterations" else [s / unit for s in secs]
        ax.plot(xs, values, color=color, label=lab, marker="o" if len(values) <= 25 else None, markersize=3,
                linewidth=1.2)
        if event == "eval":   # a real-data floor logged beside the metric (js1_real ...): dashed, same colour
            _, _, floor = run.series(f"{key}_real", "eval")
            if floor:
                ax.axhline(floor[-1], color=color, linestyle="--", linewidth=0.8)


def _figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return buf.getvalue()


def _legend(fig, axes) -> None:
    """One legend for the figure, below the panels."""
    handles, labs = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        labs = list(handles)
        ncol = min(3, len(labs))
        rows = math.ceil(len(labs) / ncol)
        bottom = min(0.4, (0.22 * rows + 0.15) / fig.get_figheight())
        fig.legend([handles[k] for k in labs], labs, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, bottom, 1, 1))
    else:
        fig.tight_layout()


def curves_figure(runs: list[Run], labs: list[str], x_axis: str) -> bytes:
    """Every training statistic, one panel each, against iterations or wall-clock time; PNG bytes."""
    plt = _plt()
    keys = stat_names(runs)
    unit, unit_label = _time_unit(runs)
    ncols = max(1, min(3, len(keys)))
    nrows = max(1, math.ceil(len(keys) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows + 0.6), squeeze=False)
    flat = [ax for row in axes for ax in row]
    colors = _colors(len(runs))
    for ax, key in zip(flat, keys):
        _draw(ax, runs, labs, colors, key, "step", x_axis, unit)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("generator iterations" if x_axis == "iterations" else unit_label, fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in flat[len(keys):]:
        ax.axis("off")
    if not keys:
        flat[0].text(0.5, 0.5, "no training statistics logged yet", ha="center", va="center")
    fig.suptitle("training statistics against " + ("generator iterations" if x_axis == "iterations"
                                                   else unit_label), fontsize=11)
    _legend(fig, flat[:max(len(keys), 1)])
    return _figure_bytes(fig)


def metric_figure(runs: list[Run], labs: list[str], key: str) -> bytes:
    """Figure 3's layout for one evaluation metric: against generator iterations and against wall-clock."""
    plt = _plt()
    unit, unit_label = _time_unit(runs)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
    colors = _colors(len(runs))
    for ax, x_axis in zip(axes, ("iterations", "seconds")):
        _draw(ax, runs, labs, colors, key, "eval", x_axis, unit)
        ax.set_xlabel("generator iterations" if x_axis == "iterations" else unit_label, fontsize=9)
        ax.set_ylabel(key, fontsize=9)
        ax.grid(True, alpha=0.3)
    better = "higher" if key in HIGHER_IS_BETTER else "lower"
    fig.suptitle(f"{key} ({better} is better)", fontsize=11)
    _legend(fig, axes)
    return _figure_bytes(fig)


# ---- samples ----------------------------------------------------------------------------------------------


def sample_files(run: Run, suffix: str = ".png") -> list[tuple[int, Path]]:
    """(iteration, file) of the run's sample grids (.png) or text samples (.txt), oldest first: samples/iter-*
    and any files that `artifact` rows of kind samples/text name."""
    found: dict[Path, int] = {}
    for row in run.event_rows("artifact"):
        p = Path(str(row.get("path", "")))
        p = p if p.is_absolute() else run.path / p
        if p.suffix == suffix and p.is_file():
            found[p.resolve()] = int(row.get("step", 0))
    folder = run.path / "samples"
    if folder.is_dir():
        for p in folder.iterdir():
            m = SAMPLE_RE.match(p.name)
            if m and p.suffix == suffix and p.is_file():
                found.setdefault(p.resolve(), int(m.group(1)))
    return sorted(((step, p) for p, step in found.items()), key=lambda sp: (sp[0], str(sp[1])))


def samples_gif(files: list[tuple[int, Path]], frame_ms: int = 300) -> bytes | None:
    """An animated GIF of sample grids, each captioned with its iteration; at most MAX_GIF_FRAMES frames,
    evenly spaced, always the first and the last. Files that cannot be read (one being written) are skipped."""
    from PIL import Image, ImageDraw

    if len(files) > MAX_GIF_FRAMES:
        idx = sorted({round(i * (len(files) - 1) / (MAX_GIF_FRAMES - 1)) for i in range(MAX_GIF_FRAMES)})
        files = [files[i] for i in idx]
    frames, size = [], None
    for step, path in files:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
        except (OSError, ValueError):
            continue
        size = size or im.size
        if im.size != size:   # GIF frames share one size
            im = im.resize(size)
        frame = Image.new("RGB", (im.width, im.height + 14), "white")   # a caption strip above the grid
        frame.paste(im, (0, 14))
        ImageDraw.Draw(frame).text((3, 1), f"iteration {step}", fill="black")
        frames.append(frame)
    if not frames:
        return None
    buf = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [max(frame_ms, 1500)]   # linger on the newest grid
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return buf.getvalue()


# ---- writing ----------------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, then rename it over `path`: readers see the old file or
    the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes 0600; a report is meant to be read like any file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _json_safe(value):
    """Strict JSON for machines: a non-finite number (a metric of a collapsed generator) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "run"


def write_report(runs: list[Run], out_dir: str | Path, table2: dict | None = None) -> dict:
    """Write the report's files (see the module docstring) into `out_dir`; returns what a `--json` caller
    prints: {"out_dir", "files": [names], "runs": summary(runs), "table2": table2}."""
    if not runs:
        raise UsageError("no runs to report on", "pass one or more run directories")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out}: {e.strerror}", "choose a writable -o folder") from None
    written: dict[str, bytes] = {}

    def put(name: str, data: bytes | str) -> None:
        data = data.encode("utf-8") if isinstance(data, str) else data
        try:
            write_atomic(out / name, data)
        except OSError as e:
            raise OutputError(f"cannot write {out / name}: {e.strerror}", "choose a writable -o folder") from None
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
    rows, table2 = _json_safe(rows), _json_safe(table2)
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
    put("index.html", _index_html(runs, labs, rows, table2, written, metric_files, gifs))
    return {"out_dir": str(out), "files": sorted(written), "runs": rows, "table2": table2}


# ---- index.html -------------------------------------------------------------------------------------------

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:left}th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.grid{display:flex;flex-wrap:wrap;gap:1em}
.grid figure{margin:0}figcaption{font-size:13px}pre{background:#f7f7f7;padding:.6em;font-size:12px;
overflow-x:auto}code{font-size:12px}"""


def _img(data: bytes, mime: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}">'


def _table(head: list[str], body: list[list]) -> str:
    def cell(v):
        cls = ' class="n"' if isinstance(v, (int, float)) else ""
        return f"<td{cls}>{html.escape(_num(v))}</td>"

    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in body) + "</table>")


def _index_html(runs, labs, rows, t2, written, metric_files, gifs) -> str:
    parts = [f"<!doctype html><html><head><meta charset=\"utf-8\"><title>wgan report</title><style>{CSS}</style>"
             "</head><body>", "<h1>wgan report</h1>",
             f"<p>{len(runs)} runs; written {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))}. Wall-clock time "
             "counts active training only (time stopped between resumed segments is left out).</p>",
             "<h2>Runs</h2>",
             _table(["label", "folder", "command", "segments"],
                    [[lab, str(r.path), r.command, r.segments] for r, lab in zip(runs, labs)])]
    metrics = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
    head = ["run", "label", "method", "architecture", "dataset", "iterations", "minutes", "status"]
    body = []
    for r in rows:
        cells = [r["run"], r["label"], r["method"], r["architecture"], r["dataset"], r["iterations"],
                 round(r["minutes"], 2), r["status"]]
        for m in metrics:
            v = r["metrics"].get(m)
            cells += [v["last"], v["best"]] if v else ["", ""]
        body.append(cells)
    parts += ["<h2>Summary</h2>", _table(head + [f"{m} {w}" for m in metrics for w in ("last", "best")], body)]
    stats = list(dict.fromkeys(s for r in rows for s in r["stats"]))
    if stats:
        parts += ["<p>Training statistics, last logged value:</p>",
                  _table(["run", *stats], [[r["run"], *(r["stats"][s]["last"] if s in r["stats"] else ""
                                                        for s in stats)] for r in rows])]
    if t2 is not None:
        word = "above" if t2["higher_is_better"] else "below"
        c = t2["appendix_c"]
        parts += ["<h2>Table 2</h2>",
                  f"<p>Success = final {html.escape(t2['metric'])} {word} the threshold; {t2['architectures']} "
                  "architectures trained with both GAN and WGAN-GP.</p>",
                  _table(["threshold", "only GAN", "only WGAN-GP", "both", "neither"],
                         [[r["threshold"], r["only_gan"], r["only_wgan_gp"], r["both"], r["neither"]]
                          for r in t2["rows"]]),
                  f"<p>Appendix C: gp ended better than lp on {c['gp_better']} of {c['architectures']} "
                  f"architectures (lp better on {c['lp_better']}, ties {c['ties']}).</p>"]
    parts += ["<h2>Training statistics</h2>", _img(written["curves-iterations.png"], "image/png", "iterations"),
              _img(written["curves-seconds.png"], "image/png", "wall-clock")]
    if metric_files:
        parts.append("<h2>Evaluation metrics</h2>")
        parts += [_img(written[f], "image/png", m) for m, f in metric_files.items()]
    if gifs:
        parts.append("<h2>Samples over training</h2><div class=\"grid\">")
        parts += [f"<figure>{_img(written[f], 'image/gif', lab)}<figcaption>{html.escape(lab)}</figcaption>"
                  "</figure>" for lab, f in gifs.items()]
        parts.append("</div>")
    texts = []
    for run, lab in zip(runs, labs):
        files = sample_files(run, ".txt")
        if files:
            step, path = files[-1]
            with contextlib.suppress(OSError):
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[:12]
                texts.append(f"<h3>{html.escape(lab)}, iteration {step}</h3><pre>"
                             + html.escape("\n".join(lines)) + "</pre>")
    if texts:
        parts += ["<h2>Text samples</h2>", *texts]
    surfaces = [(lab, run.path / "figures" / "final.png") for run, lab in zip(runs, labs)
                if run.command == "toy" and (run.path / "figures" / "final.png").is_file()]
    if surfaces:
        parts.append("<h2>Critic value surfaces (last)</h2><div class=\"grid\">")
        for lab, path in surfaces:
            with contextlib.suppress(OSError):
                parts.append(f"<figure>{_img(path.read_bytes(), 'image/png', lab)}<figcaption>"
                             f"{html.escape(lab)}</figcaption></figure>")
        parts.append("</div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
