import math

import pytest
import torch

from wgan_cli import models
from wgan_cli.config import ImageArch
from wgan_cli.errors import UsageError
from wgan_cli.models.image import conv
from wgan_cli.penalties import has_batchnorm

pytestmark = pytest.mark.usefixtures("one_thread")

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
    x = G(z, y)
    assert x.shape == (B, spec["channels"], spec["size"], spec["size"])
    assert G.pixel_range == models.pixel_range(spec["arch"], spec["size"])   # the class and the table agree
    lo, hi = (0, 1) if G.pixel_range == "sigmoid" else (-1, 1)
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
    for spec in SPECS:
        _, D = models.build(spec)
        assert not has_batchnorm(D), spec


def test_tflib_conv_init_std():
    # tflib draws uniform weights; the std of n such draws is within sqrt(0.8 / n) / 2 (relative) of the true one
    # (the uniform's 4th moment is 1.8 std^4): 0.16% for the 73,728 and 0.10% for the 204,800 weights below, so
    # 2% is over 10 of those, while a wrong formula (he or not, the stride in fan_out or not) is off by 29% or more
    torch.manual_seed(0)
    m = conv(64, 128, 3, stride=1, he=True)
    expected = math.sqrt(4.0 / (64 * 9 + 128 * 9))
    assert abs(m.weight.std().item() / expected - 1) < 0.02
    assert torch.all(m.bias == 0)
    m = conv(64, 128, 5, stride=2, he=False)   # fan_out = C_out * k^2 / stride^2
    expected = math.sqrt(2.0 / (64 * 25 + 128 * 25 / 4))
    assert abs(m.weight.std().item() / expected - 1) < 0.02


def test_arch_enum_and_registry_agree():
    assert set(models.IMAGE_ARCHS) == {a.value for a in ImageArch}
    assert {models.ARCHS[name].task for name in ("toy-mlp", "text-resnet")} == {"toy", "text"}


def test_unknown_arch_and_bad_size_refused():
    with pytest.raises(UsageError, match="unknown architecture"):
        models.build({"arch": "vgg"})
    with pytest.raises(UsageError, match="power of 2"):
        models.build(dict(arch="resnet", dim=4, size=48, channels=3))


def test_default_image_sizes_follow_the_record():
    # dcgan and resnet take the dataset's own size where they are defined at it
    assert models.image_size("dcgan", None, 28) == 28 and models.image_size("dcgan", None, 64) == 64
    assert models.image_size("resnet", None, 28) == 32 and models.image_size("resnet64", None, 32) == 64
    # the paper trains the 101-layer ResNet and the MLP generator at 64 px, whatever the dataset
    assert models.image_size("resnet101", None, 32) == models.image_size("mlp", None, 28) == 64
    assert models.image_size("mlp", 28, 32) == 28
    with pytest.raises(UsageError, match="works at 64, 128 pixels"):
        models.image_size("resnet64", 32, 32)
    assert models.pixel_range("dcgan", 28) == "sigmoid" and models.pixel_range("dcgan", 32) == "tanh"


@pytest.mark.parametrize("kwargs,words", [
    (dict(conditional=True), "--conditional needs conditional BN"),
    (dict(variant="tanh", name="resnet"), "--variant tanh is not available for --arch resnet"),
    (dict(critic_norm="batchnorm", penalty="gp"), "BatchNorm in the critic cannot be used with --penalty gp"),
    (dict(critic_norm="groupnorm"), "unknown critic normalisation"),
])
def test_each_architecture_check_refuses_once_with_its_reason(kwargs, words):
    name = kwargs.pop("name", "dcgan")
    with pytest.raises(UsageError, match=words):
        models.check(name, **kwargs)
    models.check("resnet", conditional=True, critic_norm="batchnorm", penalty="clip")   # allowed together


@pytest.fixture
def float64():
    """Chunking changes only how the batch is blocked in each matrix product, so the summation order: a dot
    product of K terms may then differ by K * u relative (u the unit roundoff), ~7e-5 in float32 for this net's
    K = 1152, but ~1e-13 in float64, so there a bound of 1e-10 on tanh outputs (|x| <= 1) holds on any machine."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_draw_is_reproducible_restores_the_mode_and_labels_conditional_models(float64):
    G, _ = models.build(dict(arch="resnet", dim=8, size=32, channels=3, n_classes=10))
    torch.manual_seed(0)
    for m in G.modules():   # conditional BN starts at gamma 1, beta 0 for every class: give the classes their own
        if isinstance(m, torch.nn.Embedding):
            torch.nn.init.normal_(m.weight, 1.0, 0.5)
    G.train()
    a, ya = models.draw(G, 5, torch.Generator().manual_seed(0), chunk=2)
    b, yb = models.draw(G, 5, torch.Generator().manual_seed(0), chunk=5)
    assert G.training                                    # the previous mode is back
    assert torch.allclose(a, b, rtol=0, atol=1e-10) and torch.equal(ya, yb) and a.shape == (5, 3, 32, 32)
    assert ya.min() >= 0 and ya.max() < 10
    fixed, yf = models.draw(G, 5, torch.Generator().manual_seed(0), labels=torch.full((5,), 3))
    assert yf.tolist() == [3] * 5 and not torch.allclose(fixed, a)
    with models.eval_mode(G):   # eval mode: BatchNorm uses running statistics, so a sample is its own
        one = G(torch.randn(1, 128, generator=torch.Generator().manual_seed(9)), torch.tensor([3]))
    alone, _ = models.draw(G, 1, torch.Generator().manual_seed(9), labels=torch.tensor([3]))
    assert torch.allclose(alone, one, rtol=0, atol=1e-10)
