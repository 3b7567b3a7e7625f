"""The first SIDE x SIDE samples of each run's last sample grid (RUN/samples/iter-*.png), side by side in one
figure: the sample panels of docs/experiments.md.

    python examples/last_grids.py runs/convergence-fashion-mnist/* -o final.png --side 4
    python examples/last_grids.py runs/random-architectures/* -o final.png --rows gp gan --row-names WGAN-GP GAN

With --rows, a run named PREFIX-ROW goes to that row and to the column of its PREFIX (arch003-gp and
arch003-gan share a column); without it the runs stand in one row, titled by their folder names. The grids are
the square 64-sample grids `wgan train` writes (--sample-every).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def last_grid(run: Path) -> np.ndarray:
    grids = sorted((run / "samples").glob("iter-*.png"))
    if not grids:
        raise SystemExit(f"error: {run} holds no sample grid (samples/iter-*.png)")
    image = Image.open(grids[-1])
    return np.asarray(image.convert("L" if image.mode in ("L", "1") else "RGB"))


def corner(grid: np.ndarray, side: int, per_row: int) -> np.ndarray:
    """The first side x side cells of a grid with `per_row` cells in each row (tiled without gaps)."""
    cell = grid.shape[1] // per_row
    return grid[:side * cell, :side * cell]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--side", type=int, default=3, help="samples per side of each panel (3: the first 9)")
    parser.add_argument("--per-row", type=int, default=8, help="samples per row of the grids (8 for 64 samples)")
    parser.add_argument("--rows", nargs="+", help="run-name suffixes, one figure row each (e.g. gp gan)")
    parser.add_argument("--row-names", nargs="+", help="the rows' labels (default: the suffixes)")
    args = parser.parse_args()

    if args.rows:
        names = args.row_names or args.rows
        columns = sorted({run.name.rsplit("-", 1)[0] for run in args.runs if "-" in run.name})
        table = [[next((r for r in args.runs if r.name == f"{col}-{row}"), None) for col in columns]
                 for row in args.rows]
        titles = [f"{col.rstrip('0123456789')} {int(col[-3:])}" if col[-3:].isdigit() else col for col in columns]
    else:
        names, table, titles = [None], [list(args.runs)], [run.name for run in args.runs]
    scale = max(1.0, args.side / 3)   # inches per panel grow with the samples shown
    fig, axes = plt.subplots(len(table), len(table[0]), squeeze=False,
                             figsize=(1.05 * scale * len(table[0]), 1.05 * scale * len(table) + 0.3))
    for r, row in enumerate(table):
        for c, run in enumerate(row):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            if run is not None:
                image = corner(last_grid(run), args.side, args.per_row)
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
            if c == 0 and names[r]:
                ax.set_ylabel(names[r], fontsize=8, rotation=0, labelpad=6 + 3 * len(names[r]))
    fig.tight_layout(pad=0.3)
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out} ({len(args.runs)} runs, the first {args.side * args.side} samples of each)")


if __name__ == "__main__":
    main()
