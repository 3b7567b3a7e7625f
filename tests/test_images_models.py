import math

import pytest
import torch

from test_images_data import one_thread  # noqa: F401 (an autouse fixture)

from wgan_cli import models
from wgan_cli.config import ImageArch
from wgan_cli.errors import UsageError
from wgan_cli.models.image import conv

SPECS = [
    dict(arch="dcgan", dim=4, size=28, channels=1),                              # gan_mnist.py
    dict(arch="dcgan", dim=4, size=32, channels=3),                              # gan_cifar.py
    dict(arch="dcgan", dim=4, size=64, channels=3),                              # gan_64x64.py DCGAN
    dict(arch="dcgan", dim=4, size=32, channels=3, variant="no-norm"),
    dict(arch="dcgan", dim=4, size=32, channels=3, variant="tanh"),
    dict(arch="dcgan", dim=4, size=32, channels=3, variant="gated"),
    dict(arch="dcgan", dim=4, size=32, channels=3, variant="constant-filters"),
    dict(arch="dcgan", dim=4, size=32, channels=3, critic_norm="layernorm"),
    dict(arch="resnet", dim=8, size=32, channels=3),                             # Appendix F
    dict(arch="resnet", dim=8, size=32, channels=3, n_classes=10),               # Table 3, supervised
    dict(arch="resnet64", dim=4, size=64, channels=3),
    dict(arch="resnet64", dim=4, size=64, channels=3, n_classes=5),
    dict(arch="resnet101", dim=4, size=32, channels=3, per_res=1),
    dict(arch="mlp", dim=4, size=32, channels=3, fc_dim=16),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_generator_shape_and_critic_scores(spec):
    torch.manual_seed(0)
    G, D = models.build(spec)
    B = 3
    z = torch.randn(B, G.z_dim)
    y = torch.tensor([0, 1, 2]) if spec.get("n_classes") else None
    x = G(z, y) if y is not None else G(z)
    assert x.shape == (B, spec["channels"], spec["size"], spec["size"])
    lo, hi = (0, 1) if G.output == "sigmoid" else (-1, 1)
    assert x.min() >= lo and x.max() <= hi
    out = D(x)
    if spec.get("n_classes"):
        scores, logits = out
        assert logits.shape == (B, spec["n_classes"])
    else:
        scores = out
    assert scores.shape == (B,)    # one number per sample
    assert G.n_classes == spec.get("n_classes", 0)


def test_resnet_parameter_counts_match_appendix_f():
    G, D = models.build(dict(arch="resnet", dim=128, size=32, channels=3))
    n_g = sum(p.numel() for p in G.parameters())
    n_d = sum(p.numel() for p in D.parameters())
    assert round(n_g / 1e6, 2) == 1.20, n_g     # 1,204,483
    assert round(n_d / 1e6, 2) == 1.05, n_d     # 1,053,825
    # the conditional variant adds only per-class gamma/beta in G and the Linear(128 -> 10) head in D
    Gc, Dc = models.build(dict(arch="resnet", dim=128, size=32, channels=3, n_classes=10))
    assert sum(p.numel() for p in Dc.parameters()) - n_d == 128 * 10 + 10


def test_critic_has_no_batchnorm_by_default():
    from wgan_cli.engine import has_batchnorm

    for spec in SPECS:
        _, D = models.build(spec)
        assert not has_batchnorm(D), spec


def test_tflib_conv_init_std():
    torch.manual_seed(0)
    m = conv(64, 128, 3, stride=1, he=True)
    expected = math.sqrt(4.0 / (64 * 9 + 128 * 9))
    assert abs(m.weight.std().item() / expected - 1) < 0.02
    assert torch.all(m.bias == 0)
    m = conv(64, 128, 5, stride=2, he=False)   # fan_out = C_out * k^2 / stride^2
    expected = math.sqrt(2.0 / (64 * 25 + 128 * 25 / 4))
    assert abs(m.weight.std().item() / expected - 1) < 0.02


def test_arch_enum_and_registry_agree():
    image_archs = {name for name in models.ARCHS if name not in ("toy-mlp", "text-resnet")}
    assert image_archs == {a.value for a in ImageArch}


def test_unknown_arch_and_bad_size_refused():
    with pytest.raises(UsageError, match="unknown architecture"):
        models.build({"arch": "vgg"})
    with pytest.raises(UsageError, match="power of 2"):
        models.build(dict(arch="resnet", dim=4, size=48, channels=3))
    with pytest.raises(UsageError, match="conditional"):
        models.build(dict(arch="dcgan", dim=4, size=32, channels=3, n_classes=10))
