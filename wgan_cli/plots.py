"""Figures: toy value surfaces (Figure 1a and the training snapshots), gradient norms per layer (Figure 1b),
loss curves from metrics.jsonl. matplotlib is imported lazily (it costs a second at start-up). Figures are
written through files.atomic_path, like every other file."""

from __future__ import annotations

from pathlib import Path

import torch

from wgan_cli.files import atomic_path

RANGE, N_GRID = 3.0, 128   # gan_toy.py's plot: a 128x128 grid on [-3, 3]^2


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@torch.no_grad()
def critic_surface(D, device) -> tuple[torch.Tensor, torch.Tensor]:
    """D on the plot grid: returns (grid coordinates (N_GRID,), values (N_GRID, N_GRID) indexed [y, x])."""
    axis = torch.linspace(-RANGE, RANGE, N_GRID)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1).to(device)
    out = D(pts)
    out = out[0] if isinstance(out, tuple) else out
    return axis, out.float().cpu().reshape(N_GRID, N_GRID)


def draw_toy_panel(ax, axis, values, real=None, fake=None, title: str = "") -> None:
    ax.contour(axis.numpy(), axis.numpy(), values.numpy(), levels=20, linewidths=0.8, cmap="viridis")
    if real is not None:
        ax.scatter(real[:, 0].cpu(), real[:, 1].cpu(), s=2, c="orange", marker="+", label="real")
    if fake is not None:
        ax.scatter(fake[:, 0].cpu(), fake[:, 1].cpu(), s=2, c="green", marker="+", label="generated")
    ax.set_xlim(-RANGE, RANGE)
    ax.set_ylim(-RANGE, RANGE)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def save_toy_figure(path: str | Path, D, real, fake, device, title: str = "") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    axis, values = critic_surface(D, device)
    draw_toy_panel(ax, axis, values, real, fake, title)
    ax.legend(loc="upper right", fontsize=7, markerscale=4)
    return _save(fig, path)


def save_value_surface_grid(path: str | Path, panels: dict, rows: list[str], cols: list[str], title: str) -> Path:
    """panels[(row, col)] = (axis, values, real, fake); Figure 1a is rows = methods, cols = datasets."""
    plt = _plt()
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(3.2 * len(cols), 3.3 * len(rows)), squeeze=False)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            axis, values, real, fake = panels[(r, c)]
            draw_toy_panel(axes[i][j], axis, values, real, fake, f"{r}: {c}")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def save_gradnorm_figure(path: str | Path, curves: dict[str, list[float]], title: str) -> Path:
    """Figure 1b: log gradient norm of the critic loss w.r.t. each layer's activations, per method."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, norms in curves.items():
        shown = [v if v > 0 else float("nan") for v in norms]   # an exact 0 (underflow) has no log: leave a gap
        ax.plot(range(1, len(norms) + 1), shown, marker="o", markersize=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("critic layer (input side = 1)")
    ax.set_ylabel("gradient norm (log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def save_loss_curves(path: str | Path, rows: list[dict], keys=("w_dist", "loss_d", "gp", "loss_g"),
                     title: str = "") -> Path | None:
    """One panel per statistic from metrics.jsonl rows; validation estimates are drawn beside training ones."""
    plt = _plt()
    steps = [r for r in rows if r.get("event") == "step"]
    evals = [r for r in rows if r.get("event") == "eval"]
    keys = [k for k in keys if any(k in r for r in steps)]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot([r["step"] for r in steps if key in r], [r[key] for r in steps if key in r], label="train")
        val = [r for r in evals if f"val_{key}" in r]
        if val:
            ax.plot([r["step"] for r in val], [r[f"val_{key}"] for r in val], label="validation")
            ax.legend(fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("generator iteration", fontsize=8)
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _save(fig, path) -> Path:
    path = Path(path)
    try:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        _plt().close(fig)
    return path
