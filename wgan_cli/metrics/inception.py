"""The FID Inception network (the TF-2015 graph `inception-2015-12-05`, in our own PyTorch) and its input pipeline.

Network quirks that the published numbers depend on (pytorch-fid / torch-fidelity):
- BatchNorm eps 1e-3 (the TF graph has no gamma: it is all ones here);
- average pools ignore padding (count_include_pad=False); the last block's pool branch is a max pool;
- input: uint8 images resized to 299x299 with TensorFlow 1.x's bilinear resize (half-pixel-free, as
  torch-fidelity reproduces it; `resize="tf1"`, the published numbers' resize), or with clean-fid's antialiased
  PIL bicubic resize (`resize="clean"`, metrics/resize.py), then scaled to (x - 128) / 128;
- outputs: pool3 features (N, 2048) and the 1008-way logits without bias (torch-fidelity's "logits_unbiased").

Where the weights come from, and how they are checked and cached: metrics/weights.py.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

SIZE = 299
POOL3_DIM = 2048
N_LOGITS = 1008

# ---- the network ------------------------------------------------------------------------------------------------
class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, **kw):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **kw)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3(x):
    # TF's average pool divides by the number of real (unpadded) pixels
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, kernel_size=1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg3(x)),
        ], 1)


class InceptionB(nn.Module):
    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    def __init__(self, c_in: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b7 = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """`max_pool=True` for the last block: the TF graph max-pools there (a quirk FID depends on)."""

    def __init__(self, c_in: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d),
            self.branch_pool(pooled),
        ], 1)


def resize_like_tf1(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """TF 1.x bilinear resize (align_corners=False, no half-pixel centres) of (N, C, H, W) float images.

    Source coordinate of output pixel i: i * in/out (float32, as TF computes it); the result equals
    torch-fidelity's `interpolate_bilinear_2d_like_tensorflow1x` bit for bit on the CPU. We interpolate along
    the width first on the H input rows, then gather rows: the same arithmetic in far fewer big gathers.
    """

    def coords(n_in: int):
        src = torch.arange(size, dtype=torch.float32, device=x.device) * torch.tensor(n_in / size, dtype=torch.float32)
        lo = src.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo, hi, src - lo.float()

    h, w = x.shape[-2:]
    x_lo, x_hi, dx = coords(w)
    y_lo, y_hi, dy = coords(h)
    left, right = x[..., x_lo], x[..., x_hi]                         # (N, C, H, size)
    rows = left + (right - left) * dx
    top, bottom = rows[:, :, y_lo, :], rows[:, :, y_hi, :]          # (N, C, size, size)
    return top + (bottom - top) * dy.view(size, 1)


RESIZES = ("tf1", "clean")


def preprocess(images: torch.Tensor, resize: str = "tf1") -> torch.Tensor:
    """uint8 (N, C, H, W), C in {1, 3} -> float32 (N, 3, 299, 299) in the network's input scale, on the images'
    device. `resize`: "tf1" (TF 1.x bilinear, the published numbers) or "clean" (clean-fid's PIL bicubic, made
    on the CPU)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"the Inception network takes uint8 images, got {images.dtype}")
    if resize == "tf1":
        x = resize_like_tf1(images.float())
    elif resize == "clean":
        from wgan_cli.metrics.resize import resize_clean

        x = resize_clean(images).to(images.device)
    else:
        raise ValueError(f"unknown resize {resize!r}: one of {', '.join(RESIZES)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)   # grayscale: the same plane on all three channels
    return (x - 128) / 128


class FIDInception(nn.Module):
    """`forward(uint8 images)` -> (pool3 (N, 2048), logits (N, 1008) or None when the weights have none).
    `resize` ("tf1" or "clean") is how forward brings the images to 299x299 (see `preprocess`)."""

    def __init__(self, with_logits: bool = True, resize: str = "tf1"):
        super().__init__()
        self.resize = resize
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(POOL3_DIM, N_LOGITS) if with_logits else None

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 299, 299) scaled input -> (N, 2048)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)                    # (N, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)                    # (N, 192, 35, 35)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)                                                # ... (N, 2048, 8, 8)
        return x.mean(dim=(2, 3))

    def input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> the scaled (N, 3, 299, 299) input of `pool3`, channels-last: ~1.5x faster
        convolutions on CPU (oneDNN) and on CUDA (cuDNN)."""
        return preprocess(images, self.resize).contiguous(memory_format=torch.channels_last)

    def head(self, feats: torch.Tensor) -> torch.Tensor | None:
        """pool3 (N, 2048) -> the "unbiased" logits (N, 1008) (no bias), or None without the logits layer."""
        return feats @ self.fc.weight.T if self.fc is not None else None

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        feats = self.pool3(self.input(images))
        return feats, self.head(feats)


def conv_layers(net: FIDInception) -> list[BasicConv2d]:
    """The 94 conv+BN layers in TF graph order (module registration order matches it)."""
    return [m for m in net.modules() if isinstance(m, BasicConv2d)]
