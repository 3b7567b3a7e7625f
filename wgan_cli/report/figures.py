"""The report's figures, as PNG bytes: training statistics and evaluation metrics against generator iterations
and against wall-clock time (Figure 3's two panels), and the training vs validation Wasserstein estimate of
Section 5.6 (Figure 5b). One line per run, one colour per run in every figure."""

from __future__ import annotations

import functools
import io
import math

from wgan_cli.report.runs import HIGHER_IS_BETTER, Run, stat_names


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_text(figure_fn):
    """Draw with every text (run labels, titles, metric names) taken literally: a `$` in a run's folder name
    (`cost_$5_vs_$10`, `lr$\\alpha$`) is a dollar sign, never matplotlib's mathtext (which would crash on the
    first and draw an alpha for the second). Text objects read the setting when they are made."""

    @functools.wraps(figure_fn)
    def draw(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return figure_fn(*args, **kwargs)

    return draw


def _colors(n: int) -> list:
    cmap = _plt().get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _time_unit(runs: list[Run]) -> tuple[float, str]:
    """Training time's unit and axis label (evaluations, checkpoints and sample grids are left out)."""
    longest = max((r.training_seconds for r in runs), default=0.0)
    if longest >= 3 * 3600:
        return 3600.0, "wall-clock hours of training"
    if longest >= 180:
        return 60.0, "wall-clock minutes of training"
    return 1.0, "wall-clock seconds of training"


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
    """One legend for the figure, below the panels; the figure grows to hold it (as many columns as fit)."""
    handles: dict = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if not handles:
        fig.tight_layout()
        return
    labs = list(handles)
    column = 0.6 + 0.068 * max(len(lab) for lab in labs)   # inches: the line sample + the text at 8 pt
    ncol = max(1, min(3, len(labs), int(fig.get_figwidth() // column)))
    rows = math.ceil(len(labs) / ncol)
    extra = 0.19 * rows + 0.2
    height = fig.get_figheight() + extra
    fig.set_figheight(height)
    fig.legend([handles[k] for k in labs], labs, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, extra / height, 1, 1))


@_plain_text
def curves_figure(runs: list[Run], labs: list[str], x_axis: str) -> bytes:
    """Every training statistic, one panel each, against iterations or wall-clock time; PNG bytes."""
    plt = _plt()
    keys = stat_names(runs)
    unit, unit_label = _time_unit(runs)
    ncols = max(1, min(3, len(keys)))
    nrows = max(1, math.ceil(len(keys) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows + 0.4), squeeze=False)
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


@_plain_text
def metric_figure(runs: list[Run], labs: list[str], key: str) -> bytes:
    """Figure 3's layout for one evaluation metric: against generator iterations and against wall-clock."""
    plt = _plt()
    unit, unit_label = _time_unit(runs)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
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


@_plain_text
def validation_figure(runs: list[Run], labs: list[str]) -> bytes | None:
    """Section 5.6, Figure 5b: for each run that logged a validation estimate (val_w_dist), the critic's
    Wasserstein estimate on training batches (w_dist, the negative critic loss without the penalty) and on
    held-out images, against generator iterations; when the two part, the critic is overfitting. Runs on a
    training subset or with augmentation also logged the held-out estimate on training images
    (train_set_w_dist: plain images, the same fakes), drawn dotted."""
    plt = _plt()
    chosen = [(run, lab, color) for run, lab, color in zip(runs, labs, _colors(len(runs)))
              if run.series("val_w_dist", "eval")[2]]
    if not chosen:
        return None
    ncols = min(3, len(chosen))
    nrows = math.ceil(len(chosen) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows + 0.5), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, (run, lab, color) in zip(flat, chosen):
        steps, _, train = run.series("w_dist", "step")
        ax.plot(steps, train, color=color, linewidth=1.2, label="training")
        steps, _, val = run.series("val_w_dist", "eval")
        ax.plot(steps, val, color=color, linestyle="--", marker="o" if len(val) <= 25 else None, markersize=3,
                linewidth=1.2, label="validation")
        steps, _, train_set = run.series("train_set_w_dist", "eval")   # the same estimate on training images
        if train_set:
            ax.plot(steps, train_set, color=color, linestyle=":", marker="s" if len(train_set) <= 25 else None,
                    markersize=3, linewidth=1.2, label="training images (as validation)")
        ax.set_title(lab, fontsize=9)
        ax.set_xlabel("generator iterations", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    for ax in flat[len(chosen):]:
        ax.axis("off")
    fig.suptitle("Wasserstein estimate (negative critic loss) on training and validation data", fontsize=11)
    fig.tight_layout()
    return _figure_bytes(fig)
