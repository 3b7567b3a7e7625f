"""Image generators and critics of the official code (gan_mnist.py, gan_cifar.py, gan_cifar_resnet.py,
gan_64x64.py). Every generator maps z (B, z_dim) [and labels (B,)] to images (B, C, S, S); every critic maps
images to (B,) scores, or to (scores, class logits) when it has an auxiliary classifier head (AC-WGAN-GP).

Initialisation follows tflib: conv weights uniform with std sqrt(4 / (fan_in + fan_out)) ("He") or
sqrt(2 / (fan_in + fan_out)), fan_out = C_out * k^2 / stride^2; linear layers Glorot; biases zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from wgan_cli.errors import UsageError

# ---- tflib initialisation ----------------------------------------------------------------------------------


def _uniform_std_(w: torch.Tensor, std: float) -> None:
    bound = std * math.sqrt(3.0)   # U(-b, b) has std b / sqrt(3)
    with torch.no_grad():
        w.uniform_(-bound, bound)


def conv(cin: int, cout: int, k: int, stride: int = 1, he: bool = True, bias: bool = True) -> nn.Conv2d:
    """'SAME'-padded convolution with tflib's init."""
    m = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=bias)
    fan_in, fan_out = cin * k * k, cout * k * k / stride**2
    _uniform_std_(m.weight, math.sqrt((4.0 if he else 2.0) / (fan_in + fan_out)))
    if bias:
        nn.init.zeros_(m.bias)
    return m


def deconv(cin: int, cout: int, k: int = 5, he: bool = True) -> nn.ConvTranspose2d:
    """tflib Deconv2D: stride 2, output exactly twice the input size."""
    m = nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)
    fan_in, fan_out = cin * k * k / 4, cout * k * k
    _uniform_std_(m.weight, math.sqrt((4.0 if he else 2.0) / (fan_in + fan_out)))
    nn.init.zeros_(m.bias)
    return m


def linear(cin: int, cout: int) -> nn.Linear:
    m = nn.Linear(cin, cout)
    _uniform_std_(m.weight, math.sqrt(2.0 / (cin + cout)))   # tflib's default (Glorot)
    nn.init.zeros_(m.bias)
    return m


# ---- normalisation and nonlinearities ----------------------------------------------------------------------


class LayerNorm2d(nn.Module):
    """tflib Layernorm over [1, 2, 3]: statistics over (C, H, W) per sample, affine per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x, y=None):  # (B, C, H, W)
        x = F.layer_norm(x, x.shape[1:], eps=1e-5)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class ConditionalBatchNorm2d(nn.Module):
    """Batch statistics shared by all classes; gamma and beta looked up per class (Table 3's supervised G)."""

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(n_classes, channels)
        self.beta = nn.Embedding(n_classes, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x, y):
        return self.bn(x) * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]


class Plain(nn.Module):
    """Wraps a module that takes no labels so every norm is called as norm(x, y)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.m = module

    def forward(self, x, y=None):
        return self.m(x)


def norm2d(kind: str, channels: int, n_classes: int = 0) -> nn.Module:
    if kind == "batchnorm":
        return ConditionalBatchNorm2d(channels, n_classes) if n_classes else Plain(nn.BatchNorm2d(channels))
    if kind == "layernorm":
        return LayerNorm2d(channels)
    if kind == "none":
        return Plain(nn.Identity())
    raise UsageError(f"unknown normalisation {kind!r}", "use batchnorm, layernorm or none")


class Gated(nn.Module):
    """Gated multiplicative nonlinearity (Figure 2): sigmoid(a) * tanh(b), halving the channels."""

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return torch.sigmoid(a) * torch.tanh(b)


def activation(kind: str) -> nn.Module:
    return {"relu": nn.ReLU(), "lrelu": nn.LeakyReLU(0.2), "tanh": nn.Tanh(), "gated": Gated()}[kind]


def width(kind: str) -> int:
    """Channels a layer must produce for its nonlinearity: the gated one eats two per output."""
    return 2 if kind == "gated" else 1


def upsample(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


def mean_pool(x):
    return F.avg_pool2d(x, 2)


def n_stages(size: int, start: int = 4) -> int:
    stages = int(round(math.log2(size / start)))
    if start * 2**stages != size:
        raise UsageError(f"image size {size} is not {start} times a power of 2", "use --size 32, 64 or 128")
    return stages


# ---- gan_mnist.py (28x28, 1 channel, sigmoid output) -------------------------------------------------------


class MnistGenerator(nn.Module):
    pixel_range = "sigmoid"

    def __init__(self, dim: int = 64, z_dim: int = 128, channels: int = 1):
        super().__init__()
        self.z_dim, self.n_classes, self.dim = z_dim, 0, dim
        self.fc = linear(z_dim, 4 * 4 * 4 * dim)
        self.up1 = deconv(4 * dim, 2 * dim)
        self.up2 = deconv(2 * dim, dim)
        self.up3 = deconv(dim, channels)

    def forward(self, z, y=None):  # (B, z_dim) -> (B, C, 28, 28) in [0, 1]
        x = F.relu(self.fc(z)).view(-1, 4 * self.dim, 4, 4)
        x = F.relu(self.up1(x))[:, :, :7, :7]   # 8x8 cropped to 7x7
        x = F.relu(self.up2(x))                  # 14x14
        return torch.sigmoid(self.up3(x))        # 28x28


class DcganCritic(nn.Module):
    """conv5 s2 + nonlinearity, doubling the width per stage, then Linear(4*4*C -> 1). 28 -> 14 -> 7 -> 4."""

    def __init__(self, dim: int = 64, size: int = 28, channels: int = 1, norm: str = "none",
                 nonlinearity: str = "lrelu", n_classes: int = 0):
        super().__init__()
        stages = 3 if size == 28 else n_stages(size)
        w = width(nonlinearity)
        layers, cin = [], channels
        for i in range(stages):
            cout = dim * 2**i
            layers.append(conv(cin, w * cout, 5, stride=2))
            if i > 0 and norm != "none":   # DCGAN: no normalisation on the first layer
                layers.append(_seq_norm(norm, w * cout))
            layers.append(activation(nonlinearity))
            cin = cout
        self.net = nn.Sequential(*layers)
        self.fc = linear(4 * 4 * cin, 1)
        self.aux = linear(4 * 4 * cin, n_classes) if n_classes else None

    def forward(self, x):  # (B, C, S, S) -> (B,)
        h = self.net(x).flatten(1)
        out = self.fc(h).squeeze(1)
        return (out, self.aux(h)) if self.aux is not None else out


def _seq_norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batchnorm" else LayerNorm2d(channels)


# ---- gan_cifar.py / gan_64x64.py DCGAN (32, 64 or 128 pixels, tanh output), with the Figure 2 variants ------


class DcganGenerator(nn.Module):
    """Linear -> (8d or 4d, 4, 4) -> deconv5 stages halving the width -> deconv5 to C -> tanh.

    Variants: norm "none" (no BN), nonlinearity tanh or gated, constant_filters (width `dim` everywhere, no BN)."""

    pixel_range = "tanh"

    def __init__(self, dim: int = 128, size: int = 32, channels: int = 3, z_dim: int = 128, norm: str = "batchnorm",
                 nonlinearity: str = "relu", constant_filters: bool = False):
        super().__init__()
        self.z_dim, self.n_classes = z_dim, 0
        stages = n_stages(size)
        widths = [dim if constant_filters else dim * 2 ** (stages - 1 - i) for i in range(stages)]
        w = width(nonlinearity)
        self.shape = (w * widths[0], 4, 4)
        self.fc = linear(z_dim, w * widths[0] * 16)
        self.fc_norm = nn.BatchNorm1d(w * widths[0] * 16) if norm == "batchnorm" else nn.Identity()
        self.act = activation(nonlinearity)
        blocks = []
        for i in range(stages - 1):
            blocks.append(deconv(widths[i], w * widths[i + 1]))
            if norm == "batchnorm":
                blocks.append(nn.BatchNorm2d(w * widths[i + 1]))
            blocks.append(activation(nonlinearity))
        blocks.append(deconv(widths[-1], channels))
        self.net = nn.Sequential(*blocks)

    def forward(self, z, y=None):  # (B, z_dim) -> (B, C, S, S) in [-1, 1]
        x = self.act(self.fc_norm(self.fc(z)).view(-1, *self.shape))
        return torch.tanh(self.net(x))


class MlpGenerator(nn.Module):
    """Figure 2's FCGenerator: 4 ReLU layers of 512, then Linear to C*S*S and tanh."""

    pixel_range = "tanh"

    def __init__(self, size: int = 64, channels: int = 3, z_dim: int = 128, fc_dim: int = 512, depth: int = 4):
        super().__init__()
        self.z_dim, self.n_classes, self.shape = z_dim, 0, (channels, size, size)
        layers, cin = [], z_dim
        for _ in range(depth):
            layers += [linear(cin, fc_dim), nn.ReLU()]
            cin = fc_dim
        layers.append(linear(cin, channels * size * size))
        self.net = nn.Sequential(*layers)

    def forward(self, z, y=None):  # (B, z_dim) -> (B, C, S, S) in [-1, 1]
        return torch.tanh(self.net(z)).view(-1, *self.shape)


# ---- gan_cifar_resnet.py (Appendix F) ---------------------------------------------------------------------


class ResBlockUp(nn.Module):
    """out = conv1x1(up(x)) + conv3(ReLU(N(conv3(up(ReLU(N(x))))))); N is BN, or conditional BN given labels."""

    def __init__(self, cin: int, cout: int, n_classes: int = 0, norm: str = "batchnorm"):
        super().__init__()
        self.n1, self.n2 = norm2d(norm, cin, n_classes), norm2d(norm, cout, n_classes)
        self.conv1, self.conv2 = conv(cin, cout, 3), conv(cout, cout, 3)
        self.shortcut = conv(cin, cout, 1, he=False)

    def forward(self, x, y=None):
        h = self.conv1(upsample(F.relu(self.n1(x, y))))
        h = self.conv2(F.relu(self.n2(h, y)))
        return self.shortcut(upsample(x)) + h


class ResBlockDown(nn.Module):
    """Critic block. first: main = conv3 ReLU conv3 pool, shortcut = conv1x1(pool(x)) (no pre-activation);
    down: main = ReLU conv3 ReLU conv3 pool, shortcut = pool(conv1x1(x)); else identity shortcut."""

    def __init__(self, cin: int, cout: int, kind: str = "down", norm: str = "none"):
        super().__init__()
        self.kind = kind
        self.n1 = norm2d(norm, cin) if kind != "first" else Plain(nn.Identity())
        self.n2 = norm2d(norm, cout)
        self.conv1, self.conv2 = conv(cin, cout, 3), conv(cout, cout, 3)
        self.shortcut = conv(cin, cout, 1, he=False) if (kind != "same" or cin != cout) else None

    def forward(self, x):
        h = x if self.kind == "first" else F.relu(self.n1(x))
        h = self.conv2(F.relu(self.n2(self.conv1(h))))
        if self.kind == "same":
            return (x if self.shortcut is None else self.shortcut(x)) + h
        if self.kind == "first":
            return self.shortcut(mean_pool(x)) + mean_pool(h)
        return mean_pool(self.shortcut(x)) + mean_pool(h)


class ResnetGenerator(nn.Module):
    """z -> Linear(z_dim -> 4*4*dim) -> log2(S/4) ResBlock-up(dim) -> BN ReLU conv3(dim -> C) tanh."""

    pixel_range = "tanh"

    def __init__(self, dim: int = 128, size: int = 32, channels: int = 3, z_dim: int = 128, n_classes: int = 0):
        super().__init__()
        self.z_dim, self.n_classes, self.dim = z_dim, n_classes, dim
        self.fc = linear(z_dim, 4 * 4 * dim)
        self.blocks = nn.ModuleList(ResBlockUp(dim, dim, n_classes) for _ in range(n_stages(size)))
        self.norm = norm2d("batchnorm", dim, n_classes)
        self.out = conv(dim, channels, 3, he=False)

    def forward(self, z, y=None):
        x = self.fc(z).view(-1, self.dim, 4, 4)
        for block in self.blocks:
            x = block(x, y)
        return torch.tanh(self.out(F.relu(self.norm(x, y))))


class ResnetCritic(nn.Module):
    """first block (S -> S/2), down blocks to 8x8, two blocks at 8x8; ReLU, mean over H, W, Linear(dim -> 1)
    (and Linear(dim -> n_classes) for the AC-WGAN-GP head)."""

    def __init__(self, dim: int = 128, size: int = 32, channels: int = 3, norm: str = "none", n_classes: int = 0):
        super().__init__()
        downs = n_stages(size, start=8)
        blocks = [ResBlockDown(channels, dim, "first", norm)]
        blocks += [ResBlockDown(dim, dim, "down", norm) for _ in range(downs - 1)]
        blocks += [ResBlockDown(dim, dim, "same", norm) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.fc = linear(dim, 1)
        self.aux = linear(dim, n_classes) if n_classes else None

    def forward(self, x):
        h = F.relu(self.blocks(x)).mean(dim=(2, 3))   # (B, dim)
        out = self.fc(h).squeeze(1)
        return (out, self.aux(h)) if self.aux is not None else out


# ---- gan_64x64.py "Good" ResNet (64x64) -------------------------------------------------------------------


class GoodResBlockDown(nn.Module):
    """gan_64x64.py down block: main = N ReLU conv3(cin -> cin) N ReLU conv3(cin -> cout) pool;
    shortcut = conv1x1(pool(x))."""

    def __init__(self, cin: int, cout: int, norm: str = "layernorm"):
        super().__init__()
        self.n1, self.n2 = norm2d(norm, cin), norm2d(norm, cin)
        self.conv1, self.conv2 = conv(cin, cin, 3), conv(cin, cout, 3)
        self.shortcut = conv(cin, cout, 1, he=False)

    def forward(self, x):
        h = self.conv1(F.relu(self.n1(x)))
        h = mean_pool(self.conv2(F.relu(self.n2(h))))
        return self.shortcut(mean_pool(x)) + h


class GoodGenerator(nn.Module):
    """Linear(z -> 4*4*8d) -> ResUp 8d->8d, 8d->4d, 4d->2d, 2d->d (at 64x64) -> BN ReLU conv3 tanh."""

    pixel_range = "tanh"

    def __init__(self, dim: int = 64, size: int = 64, channels: int = 3, z_dim: int = 128, n_classes: int = 0):
        super().__init__()
        self.z_dim, self.n_classes, self.dim = z_dim, n_classes, dim
        stages = n_stages(size)
        widths = [8 * dim] + [max(dim, 8 * dim // 2**i) for i in range(stages)]
        self.fc = linear(z_dim, 4 * 4 * widths[0])
        self.blocks = nn.ModuleList(ResBlockUp(widths[i], widths[i + 1], n_classes) for i in range(stages))
        self.norm = norm2d("batchnorm", widths[-1], n_classes)
        self.out = conv(widths[-1], channels, 3, he=False)

    def forward(self, z, y=None):
        x = self.fc(z).view(-1, 8 * self.dim, 4, 4)
        for block in self.blocks:
            x = block(x, y)
        return torch.tanh(self.out(F.relu(self.norm(x, y))))


class GoodCritic(nn.Module):
    """conv3(C -> d) -> ResDown d->2d, 2d->4d, 4d->8d, 8d->8d -> Linear(4*4*8d -> 1)."""

    def __init__(self, dim: int = 64, size: int = 64, channels: int = 3, norm: str = "layernorm",
                 n_classes: int = 0):
        super().__init__()
        stages = n_stages(size)
        widths = [min(8 * dim, dim * 2**i) for i in range(stages + 1)]
        self.inp = conv(channels, dim, 3, he=False)
        self.blocks = nn.Sequential(*(GoodResBlockDown(widths[i], widths[i + 1], norm) for i in range(stages)))
        self.fc = linear(4 * 4 * widths[-1], 1)
        self.aux = linear(4 * 4 * widths[-1], n_classes) if n_classes else None

    def forward(self, x):
        h = self.blocks(self.inp(x)).flatten(1)
        out = self.fc(h).squeeze(1)
        return (out, self.aux(h)) if self.aux is not None else out


# ---- gan_64x64.py 101-layer ResNet (bottleneck blocks) -----------------------------------------------------


class Bottleneck(nn.Module):
    """shortcut + 0.3 * N(conv1x1(ReLU(conv3 (resampling)(ReLU(conv1x1(ReLU(x))))))), widths halved inside."""

    def __init__(self, cin: int, cout: int, resample: str | None, norm: str):
        super().__init__()
        self.resample = resample
        mid_in, mid_out = max(cin // 2, 1), max(cout // 2, 1)
        self.conv1 = conv(cin, mid_in, 1)
        if resample == "up":
            self.conv1b = deconv(mid_in, mid_out, 3)
        else:
            self.conv1b = conv(mid_in, mid_out, 3, stride=2 if resample == "down" else 1)
        self.conv2 = conv(mid_out, cout, 1, bias=False)
        self.norm = norm2d(norm, cout)
        self.shortcut = None
        if resample is not None or cin != cout:
            self.shortcut = conv(cin, cout, 1, stride=2 if resample == "down" else 1, he=False)

    def forward(self, x):
        if self.shortcut is None:
            s = x
        elif self.resample == "up":
            s = self.shortcut(upsample(x))
        else:
            s = self.shortcut(x)
        h = self.conv1b(F.relu(self.conv1(F.relu(x))))
        h = self.norm(self.conv2(F.relu(h)))
        return s + 0.3 * h


class Resnet101Generator(nn.Module):
    """`per_res` bottleneck blocks at each resolution from 4 to S; width 8d at 4x4, halving per doubling;
    output tanh(x / 5)."""

    pixel_range = "tanh"

    def __init__(self, dim: int = 64, size: int = 64, channels: int = 3, z_dim: int = 128, per_res: int = 6):
        super().__init__()
        self.z_dim, self.n_classes, self.dim = z_dim, 0, dim
        stages = n_stages(size)
        widths = [max(8 * dim // 2**i, 2) for i in range(stages + 1)]
        self.fc = linear(z_dim, 4 * 4 * widths[0])
        blocks = []
        for i in range(stages + 1):
            n = per_res if i < stages else max(per_res - 1, 1)
            blocks += [Bottleneck(widths[i], widths[i], None, "batchnorm") for _ in range(n)]
            if i < stages:
                blocks.append(Bottleneck(widths[i], widths[i + 1], "up", "batchnorm"))
        self.blocks = nn.Sequential(*blocks)
        self.out = conv(widths[-1], channels, 3, he=False)
        self.width0 = widths[0]

    def forward(self, z, y=None):  # (B, z_dim) -> (B, C, S, S) in [-1, 1]
        x = self.blocks(self.fc(z).view(-1, self.width0, 4, 4))
        return torch.tanh(self.out(x) / 5.0)


class Resnet101Critic(nn.Module):
    def __init__(self, dim: int = 64, size: int = 64, channels: int = 3, norm: str = "layernorm",
                 per_res: int = 6, n_classes: int = 0):
        super().__init__()
        stages = n_stages(size)
        widths = [max(8 * dim // 2**i, 2) for i in range(stages + 1)][::-1]   # S -> 4
        self.inp = conv(channels, widths[0], 1, he=False)
        blocks = []
        for i in range(stages + 1):
            n = per_res if i > 0 else max(per_res - 1, 1)
            blocks += [Bottleneck(widths[i], widths[i], None, norm) for _ in range(n)]
            if i < stages:
                blocks.append(Bottleneck(widths[i], widths[i + 1], "down", norm))
        self.blocks = nn.Sequential(*blocks)
        self.fc = linear(4 * 4 * widths[-1], 1)
        self.aux = linear(4 * 4 * widths[-1], n_classes) if n_classes else None

    def forward(self, x):
        h = self.blocks(self.inp(x)).flatten(1)
        out = self.fc(h).squeeze(1) / 5.0
        return (out, self.aux(h)) if self.aux is not None else out


# ---- builders (registered in models.ARCHS) -----------------------------------------------------------------

VARIANTS = ("default", "no-norm", "tanh", "gated", "constant-filters")


def dcgan(*, dim: int = 64, size: int = 28, channels: int = 1, z_dim: int = 128, critic_norm: str = "none",
          variant: str = "default"):
    """28x28 (1 channel): the gan_mnist.py nets; 32/64/128: the gan_cifar.py / gan_64x64.py DCGAN, with the
    Figure 2 variants (no-norm, tanh, gated, constant-filters)."""
    if size == 28:
        if variant != "default":
            raise UsageError("the Figure 2 variants need 32 pixels or more", "add --size 32 or 64")
        return MnistGenerator(dim, z_dim, channels), DcganCritic(dim, 28, channels, critic_norm)
    nonlin = {"tanh": "tanh", "gated": "gated"}.get(variant, "relu")
    G = DcganGenerator(dim, size, channels, z_dim, norm="none" if variant in ("no-norm", "constant-filters",
                                                                               "gated", "tanh") else "batchnorm",
                       nonlinearity=nonlin, constant_filters=variant == "constant-filters")
    d_nonlin = {"tanh": "tanh", "gated": "gated"}.get(variant, "lrelu")
    D = DcganCritic(dim, size, channels, "none" if variant == "no-norm" else critic_norm, d_nonlin)
    return G, D


def resnet(*, dim: int = 128, size: int = 32, channels: int = 3, z_dim: int = 128, critic_norm: str = "none",
           n_classes: int = 0):
    """Appendix F (gan_cifar_resnet.py): G about 1.20M, D about 1.05M parameters at dim 128, 32x32."""
    return (ResnetGenerator(dim, size, channels, z_dim, n_classes),
            ResnetCritic(dim, size, channels, critic_norm, n_classes))


def resnet64(*, dim: int = 64, size: int = 64, channels: int = 3, z_dim: int = 128, critic_norm: str = "layernorm",
             n_classes: int = 0):
    """gan_64x64.py GoodGenerator / GoodDiscriminator."""
    return (GoodGenerator(dim, size, channels, z_dim, n_classes),
            GoodCritic(dim, size, channels, critic_norm, n_classes))


def resnet101(*, dim: int = 64, size: int = 64, channels: int = 3, z_dim: int = 128, critic_norm: str = "layernorm",
              per_res: int = 6):
    """gan_64x64.py ResnetGenerator / ResnetDiscriminator: bottleneck blocks, residuals scaled by 0.3."""
    return (Resnet101Generator(dim, size, channels, z_dim, per_res),
            Resnet101Critic(dim, size, channels, critic_norm, per_res))


def mlp(*, dim: int = 64, size: int = 64, channels: int = 3, z_dim: int = 128, critic_norm: str = "none",
        fc_dim: int = 512):
    """Figure 2: 4 x 512 ReLU MLP generator against the DCGAN critic."""
    return MlpGenerator(size, channels, z_dim, fc_dim), DcganCritic(dim, size, channels, critic_norm)
