"""Export every generator family at its default width to ONNX and .pt2 and compare the exported model with the
PyTorch one on the same latents: the table of docs/api.md.

Each family is built from a fixed seed (random weights; BatchNorm running statistics moved off (0, 1) so eval
mode matters), saved as a checkpoint, loaded with wgan_cli.load, exported with the float head (`wgan export`'s
default), then run on the CPU (onnxruntime / torch.export.load) on --rows latents drawn from seeds 0..rows-1,
beside G.module on the same latents. Reported: the max |difference| of the float outputs and, for images, the
share of bytes identical after the quantisation `wgan sample` applies (data.pixels.to_uint8); for text, the share
of argmax characters identical.

    python benchmarks/export_check.py --rows 256 --out runs/export-check
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from wgan_cli import api, checkpoint, export, models
from wgan_cli.data.pixels import to_uint8

FAMILIES = {
    "toy (toy-mlp 3x512)": ("toy", {"arch": "toy-mlp", "dim": 512, "depth": 3, "z_dim": 2, "data_dim": 2}),
    "dcgan 28 (MNIST nets)": ("image", dict(arch="dcgan", dim=64, size=28, channels=1, z_dim=128)),
    "dcgan 32": ("image", dict(arch="dcgan", dim=64, size=32, channels=3, z_dim=128)),
    "dcgan 64": ("image", dict(arch="dcgan", dim=64, size=64, channels=3, z_dim=128)),
    "resnet 32 (Appendix F)": ("image", dict(arch="resnet", dim=128, size=32, channels=3, z_dim=128)),
    "resnet64": ("image", dict(arch="resnet64", dim=64, size=64, channels=3, z_dim=128)),
    "resnet 32 conditional (10 classes)": ("image", dict(arch="resnet", dim=128, size=32, channels=3, z_dim=128,
                                                          n_classes=10)),
    "text (text-resnet 512, 32 chars)": ("text", dict(arch="text-resnet", vocab_size=96, seq_len=32, dim=512,
                                                      z_dim=128, n_blocks=5)),
}


def make(path: Path, task: str, spec: dict) -> Path:
    torch.manual_seed(0)
    G, _ = models.build(spec)
    for m in G.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    extra = None
    if task == "text":
        extra = {"vocab": [""] + [chr(32 + i) for i in range(95)], "seq_len": 32, "pad": "`"}
    return checkpoint.save(path, {"G." + k: v for k, v in G.state_dict().items()}, kind="generator", task=task,
                           model=spec, extra=extra)


def run(fmt: str, path: Path, args) -> torch.Tensor:
    if fmt == ".onnx":
        return torch.from_numpy(export.run_onnx(path, args))
    return torch.from_numpy(export.run_pt2(path, args))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("runs/export-check"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| family | format | max abs diff (float) | identical (uint8 / ids) | export s |")
    print("|---|---|---|---|---|")
    for name, (task, spec) in FAMILIES.items():
        G = api.load(make(args.out / "g.safetensors", task, spec))
        z, y = G.latents(seeds=range(args.rows))
        inputs = (z,) if y is None else (z, y)
        with torch.no_grad():
            want = G.module(*inputs)
        for fmt in (".onnx", ".pt2"):
            t = time.time()
            path, _ = export.export(G, args.out / f"g{fmt}")
            took = time.time() - t
            got = run(fmt, path, inputs)
            diff = float((got - want).abs().max())
            if task == "image":
                pixels = G.spec.pixel_range
                same = float((to_uint8(got, pixels) == to_uint8(want, pixels)).float().mean())
            elif task == "text":
                same = float((got.argmax(-1) == want.argmax(-1)).float().mean())
            else:
                same = float("nan")
            shown = "-" if same != same else f"{same:.4%}"
            print(f"| {name} | {fmt[1:]} | {diff:.2e} | {shown} | {took:.0f} |", flush=True)


if __name__ == "__main__":
    main()
