"""`wgan sample`: draw from a generator checkpoint, rebuilt from the checkpoint's metadata alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wgan_cli import checkpoint, models
from wgan_cli.errors import CheckpointError, OutputError, UsageError

POINT_SUFFIXES = (".csv", ".npy")


def load_generator(path: str | Path, *, ema: bool = False, device="cpu", task=("toy", "image"),
                   command: str = "wgan sample") -> tuple[torch.nn.Module, dict]:
    """Rebuild G from a train-state or generator checkpoint; weights land on `device` (CPU works for any)."""
    tensors, meta = checkpoint.load(path, task=task, command=command)
    spec = {k: v for k, v in meta["model"].items() if k != "fixed_generator"}
    if meta["model"].get("fixed_generator"):
        raise CheckpointError(f"{path}: a fixed-generator (Figure 1a) run has no trained generator to sample",
                              "sample a checkpoint of a normal `wgan toy` run")
    G, _ = models.build(spec)
    weights = checkpoint.generator_tensors(tensors, ema=ema)
    if ema and not weights:
        raise CheckpointError(f"{path}: no EMA generator was kept in this run", "drop --ema, or train with --ema-decay")
    try:
        G.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the model in its metadata ({str(e).splitlines()[0]})",
                              "the checkpoint is damaged or from an incompatible wgan version") from None
    return G.to(device).eval(), meta


def check_output(out: Path, suffixes: tuple[str, ...], what: str) -> None:
    if out.suffix.lower() not in suffixes:
        raise UsageError(f"cannot write {what} to {out}: unknown output type {out.suffix or '(none)'}",
                         f"use one of: {', '.join(suffixes)}")
    if not out.parent.exists():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create {out.parent}: {e.strerror}", "choose a writable -o path") from None


@torch.no_grad()
def sample_points(G, n: int, seed: int, device) -> torch.Tensor:
    gen = torch.Generator(device=device).manual_seed(seed)
    return G(torch.randn(n, G.z_dim, device=device, generator=gen)).float().cpu()


def write_points(points: torch.Tensor, out: Path) -> Path:
    arr = points.numpy()
    try:
        if out.suffix.lower() == ".npy":
            np.save(out, arr.astype(np.float32))
        else:
            np.savetxt(out, arr, delimiter=",", header="x,y", comments="", fmt="%.6f")
    except OSError as e:
        raise OutputError(f"cannot write {out}: {e.strerror}", "choose a writable -o path") from None
    return out


def sample_command(ckpt: Path, n: int, out: Path, seed: int, device, ema: bool = False) -> str:
    """Dispatch on the checkpoint's task; returns a one-line summary of what was written."""
    meta = checkpoint.read_meta(ckpt)
    if meta["task"] == "text":
        raise CheckpointError(f"{ckpt}: a text checkpoint", "generate text with `wgan textgen --ckpt CKPT`")
    if n < 1:
        raise UsageError(f"-n must be at least 1 (got {n})", "ask for some samples: -n 64")
    if meta["task"] == "toy":
        check_output(out, POINT_SUFFIXES, "points")
        G, _ = load_generator(ckpt, ema=ema, device=device)
        write_points(sample_points(G, n, seed, device), out)
        return f"wrote {n} points to {out}"
    raise UsageError(f"{ckpt}: sampling {meta['task']} checkpoints is not available yet", "see `wgan sample --help`")
