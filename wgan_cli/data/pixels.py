"""Pixels: the one conversion from generator output to uint8 images, real images to the generator's range, and
resizing a stored data set to the size a network needs.

`pixel_range` names the range of a generator's images: "tanh" for [-1, 1], "sigmoid" for [0, 1] (the MNIST
nets); a generator's own is its `pixel_range` attribute (models.pixel_range gives it from the architecture).
`to_uint8` / `to_uint8_nhwc` follow the official code: int((g+1)*255.99/2) for tanh generators, int(g*255.99)
for the sigmoid ones; `wgan train`'s sample grids, `wgan sample` and `wgan score` use them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_uint8(x: torch.Tensor, pixel_range: str = "tanh") -> torch.Tensor:
    """Generator output -> uint8 exactly as a saved image, same layout and device:
    tanh int((g+1)*255.99/2), sigmoid int(g*255.99)."""
    scaled = (x.detach().float() + 1) * (255.99 / 2) if pixel_range == "tanh" else x.detach().float() * 255.99
    return scaled.clamp(0, 255).to(torch.uint8)   # the cast truncates, as int() does


def to_uint8_nhwc(x: torch.Tensor, pixel_range: str = "tanh") -> np.ndarray:
    """(B, C, H, W) generator output -> (B, H, W, C) uint8 numpy, for PNG and npz files."""
    return to_uint8(x, pixel_range).cpu().permute(0, 2, 3, 1).numpy()


def scale_real(x: torch.Tensor, pixel_range: str, dequantize: bool, gen: torch.Generator | None,
               shard=None) -> torch.Tensor:
    """uint8 (B, C, H, W) -> the generator's range. Dequantised as gan_cifar_resnet.py: 2*(x/256 - .5) + U(0, 1/128);
    otherwise gan_cifar.py's 2*(x/255 - .5); [0, 1] for the sigmoid MNIST nets. With `shard` (torchrun), x is one
    rank's rows: the noise is drawn for the global batch and those rows kept."""
    x = x.float()
    if dequantize:
        if shard is None:
            u = torch.rand(x.shape, device=x.device, generator=gen)
        else:
            u = shard.take(torch.rand((len(x) * shard.world, *x.shape[1:]), device=x.device, generator=gen))
        x = (x + u) / 256.0   # x/256 + U(0, 1/256)
    else:
        x = x / 255.0
    return x if pixel_range == "sigmoid" else 2.0 * x - 1.0


def resize_uint8(images: np.ndarray, size: int) -> torch.Tensor:
    """(N, C, h, w) uint8 -> (N, C, size, size) uint8 (bilinear, antialiased), in chunks to bound memory."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))   # IDX buffers are read-only
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = torch.empty((len(x), x.shape[1], size, size), dtype=torch.uint8)
    for i in range(0, len(x), 4096):
        chunk = F.interpolate(x[i: i + 4096].float(), size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)
        out[i: i + 4096] = chunk.round().clamp(0, 255).to(torch.uint8)
    return out
