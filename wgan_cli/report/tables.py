"""The summary table: one row per run (method, architecture, iterations, minutes, last and best of each metric),
as JSON rows and as Markdown."""

from __future__ import annotations

import math

from wgan_cli.report.legend import labels
from wgan_cli.report.runs import (HIGHER_IS_BETTER, NOT_SUMMARISED, Run, architecture_name, dataset, method,
                                  metric_names, run_is_going, stat_names)


def summary(runs: list[Run]) -> list[dict]:
    """One row per run: run, label, method, architecture, dataset, iterations, minutes (active wall-clock time),
    training_minutes (the same without checkpoints, evaluations and sample grids), status (finished: its
    iterations done; running: a training command is writing it; else incomplete), and for each
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
                    "training_minutes": run.training_seconds / 60,
                    "segments": run.segments,
                    "status": "finished" if done else "running" if run_is_going(run.path) else "incomplete",
                    "metrics": metrics, "stats": stats})
    return out


def summary_markdown(rows: list[dict]) -> str:
    metrics = list(dict.fromkeys(m for r in rows for m in r["metrics"]))
    head = ["run", "label", "method", "architecture", "iterations", "minutes", "training minutes"]
    for m in metrics:
        head += [f"{m} last", f"{m} best"]
    lines = [md_row(head), md_row(["---"] * len(head))]
    for r in rows:
        its = f"{r['iterations']}" + (f" / {r['target_iterations']}" if r["status"] != "finished" else "")
        cells = [r["run"], r["label"], r["method"], r["architecture"], its, f"{r['minutes']:.2f}",
                 f"{r['training_minutes']:.2f}"]
        for m in metrics:
            v = r["metrics"].get(m)
            cells += [fmt_num(v["last"]), fmt_num(v["best"])] if v else ["", ""]
        lines.append(md_row(cells))
    stats = list(dict.fromkeys(s for r in rows for s in r["stats"]))
    if stats:
        lines += ["", "Training statistics, last logged value:", "",
                  md_row(["run", *stats]), md_row(["---"] * (len(stats) + 1))]
        for r in rows:
            lines.append(md_row([r["run"], *(fmt_num(r["stats"][s]["last"]) if s in r["stats"] else ""
                                              for s in stats)]))
    return "\n".join(lines) + "\n"


def md_text(value) -> str:
    """Text from run names, labels or metric names made safe for Markdown: `&`, `<`, `>` as HTML entities (many
    renderers pass raw HTML through unsanitised: a folder named `<img src=x onerror=...>` must stay text) and
    line breaks as spaces (a row is one line)."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.splitlines())


def md_row(cells) -> str:
    return "| " + " | ".join(md_text(c).replace("|", "\\|") for c in cells) + " |"


def fmt_num(v) -> str:
    if v is None:
        return "n/a"   # a non-finite value, nulled for JSON
    return f"{v:.4g}" if isinstance(v, float) else str(v)
