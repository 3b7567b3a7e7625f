"""Tiny generator checkpoints for the tests: `save_generator` (any spec) and `make_checkpoint` (one of each
architecture family, for the API, sample and export tests)."""

import sys

from paths import ROOT
from wgan_cli import checkpoint, models

sys.path.insert(0, str(ROOT / "benchmarks"))
import families  # noqa: E402   benchmarks/families.py: the families' one table, also what the export benchmark runs

TEXT_EXTRA = {"vocab": ["", "a", "b", "c", " ", "`"], "seq_len": 8, "pad": "`"}
FAMILIES = {   # name -> (task, spec): the architecture families a checkpoint can hold, at tiny widths
    name: (family.task, family.spec_at(tiny=True)) for name, family in families.FAMILIES.items()}


def text_extra(spec: dict) -> dict:
    """A character map of the model's vocab_size: '' (unknown), letters, and '`' (the padding)."""
    letters = [chr(ord("a") + i) for i in range(spec["vocab_size"] - 2)]
    return {"vocab": ["", *letters, "`"], "seq_len": spec["seq_len"], "pad": "`"}


def save_generator(path, spec: dict, *, kind: str = "generator", task: str | None = None, extra: dict | None = None,
                   ema: bool = False, step: int = 1, seed: int = 0, G=None):
    """A checkpoint of G built from `spec` with the weights of `seed` (or the given G). The task is the
    architecture's; a text model gets a character map. `ema` adds an EMA copy whose weights are all zero, so a test
    can tell which copy was sampled."""
    task = task or models.ARCHS[spec["arch"]].task
    if G is None:
        G, _ = models.build_seeded(spec, seed)
    tensors = {"G." + k: v for k, v in G.state_dict().items()}
    if ema:
        tensors.update({"G_ema." + k: v * 0 for k, v in G.state_dict().items()})
    if extra is None and task == "text":
        extra = text_extra(spec)
    return checkpoint.save(path, tensors, kind=kind, task=task, model=spec, step=step, extra=extra)


def make_checkpoint(path, family: str, seed: int = 0):
    """A generator checkpoint of `family` with weights from `seed`; BatchNorm running statistics are moved off
    their initial (0, 1) so eval mode is exercised."""
    task, spec = FAMILIES[family]
    return save_generator(path, spec, task=task, step=3, extra=TEXT_EXTRA if task == "text" else None,
                          G=families.generator(spec, seed))
