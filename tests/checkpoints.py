"""Tiny generator checkpoints for the tests: `save_generator` (any spec) and `make_checkpoint` (one of each
architecture family, for the API, sample and export tests)."""

import torch

from wgan_cli import checkpoint, models

TEXT_EXTRA = {"vocab": ["", "a", "b", "c", " ", "`"], "seq_len": 8, "pad": "`"}
FAMILIES = {   # name -> (task, spec): the architecture families a checkpoint can hold, at tiny widths
    "toy": ("toy", {"arch": "toy-mlp", "dim": 8, "depth": 2, "z_dim": 2, "data_dim": 2}),
    "dcgan28": ("image", dict(arch="dcgan", dim=4, size=28, channels=1, z_dim=16)),
    "dcgan32": ("image", dict(arch="dcgan", dim=4, size=32, channels=3, z_dim=16)),
    "dcgan64": ("image", dict(arch="dcgan", dim=4, size=64, channels=3, z_dim=16)),
    "resnet": ("image", dict(arch="resnet", dim=8, size=32, channels=3, z_dim=16)),
    "resnet64": ("image", dict(arch="resnet64", dim=4, size=64, channels=3, z_dim=16)),
    "resnet-cond": ("image", dict(arch="resnet", dim=8, size=32, channels=3, z_dim=16, n_classes=10)),
    "text": ("text", dict(arch="text-resnet", vocab_size=6, seq_len=8, dim=8, z_dim=16, n_blocks=1)),
}


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
    torch.manual_seed(seed)
    G, _ = models.build(spec)
    for m in G.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return save_generator(path, spec, task=task, step=3, extra=TEXT_EXTRA if task == "text" else None, G=G)
