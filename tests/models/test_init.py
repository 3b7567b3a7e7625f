"""`--init`: "torch" gives every linear and convolution layer PyTorch's default distribution, "tflib" keeps tflib's
(the official code's); the choice is part of the model spec, so it travels through checkpoints and resumes."""

import json
import math

import pytest
import torch
from standins import write_mnist
from torch import nn
from typer.testing import CliRunner

from wgan_cli import checkpoint, models
from wgan_cli.cli import app
from wgan_cli.config import Init
from wgan_cli.errors import UsageError
from wgan_cli.models.init import INITS

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")
SPEC = {"arch": "dcgan", "dim": 16, "size": 28, "channels": 1, "z_dim": 128}   # the gan_mnist.py nets


def build(spec: dict, seed: int = 0):
    torch.manual_seed(seed)
    return models.build(spec)


def layers(G, D) -> list[nn.Module]:
    return [m for net in (G, D) for m in net.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]


def torch_bound(m: nn.Module) -> float:
    """PyTorch's default: weights U(+-1/sqrt(fan_in)) (kaiming_uniform_ with a = sqrt(5)), biases likewise."""
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
    return 1.0 / math.sqrt(fan_in)


def tflib_std(m: nn.Module) -> float:
    """tflib: std sqrt(4/(fan_in + fan_out)) for convolutions, the stride dividing the output side; Glorot linears."""
    if isinstance(m, nn.Linear):
        return math.sqrt(2.0 / sum(m.weight.shape))
    k2, s2 = m.kernel_size[0] * m.kernel_size[1], m.stride[0] ** 2
    if isinstance(m, nn.ConvTranspose2d):
        fan_in, fan_out = m.in_channels * k2 / s2, m.out_channels * k2
    else:
        fan_in, fan_out = m.in_channels * k2, m.out_channels * k2 / s2
    return math.sqrt(4.0 / (fan_in + fan_out))


def looks_like_torch_default(m: nn.Module) -> bool:
    b = torch_bound(m)
    w = m.weight.detach()
    return bool(w.abs().max() <= b and w.abs().max() > 0.9 * b and abs(w.std().item() - b / math.sqrt(3)) < 0.1 * b
                and m.bias.abs().max() <= b and m.bias.abs().max() > 0)


def test_torch_gives_pytorchs_default_distribution():
    G, D = build({**SPEC, "init": "torch"})
    for m in layers(G, D):
        assert looks_like_torch_default(m), (m, torch_bound(m), m.weight.std().item(), m.bias.abs().max().item())
    # the same shapes made afresh by PyTorch agree with the rebuilt layers in spread
    fresh = nn.ConvTranspose2d(4 * 16, 2 * 16, 5, 2, padding=2, output_padding=1)
    assert G.up1.weight.std().item() == pytest.approx(fresh.weight.std().item(), rel=0.05)


def test_tflib_keeps_tflibs_std_and_zero_biases():
    G, D = build({**SPEC, "init": "tflib"})
    for m in layers(G, D):
        assert m.weight.std().item() == pytest.approx(tflib_std(m), rel=0.1), m
        assert torch.count_nonzero(m.bias) == 0
    # the check above can tell the two apart: tflib's deconvolutions are about 3x wider than PyTorch's
    assert not looks_like_torch_default(G.up1) and not looks_like_torch_default(D.net[0])


def test_no_key_means_tflib_as_in_older_checkpoints():
    a, b = build(SPEC), build({**SPEC, "init": "tflib"})
    c = build({**SPEC, "init": "torch"})
    for x, y, z in zip(layers(*a), layers(*b), layers(*c)):
        assert torch.equal(x.weight, y.weight) and not torch.equal(x.weight, z.weight)


def test_torch_keeps_conditional_bn_at_the_identity():
    G, _ = build({"arch": "resnet", "dim": 8, "size": 32, "channels": 3, "n_classes": 10, "init": "torch"})
    gammas = [m.gamma.weight for m in G.modules() if hasattr(m, "gamma")]
    assert gammas and all(torch.equal(g, torch.ones_like(g)) for g in gammas)
    assert looks_like_torch_default(G.fc)


def test_unknown_init_refused_and_enum_in_sync():
    with pytest.raises(UsageError, match="initialisation"):
        models.build({**SPEC, "init": "xavier"})
    assert {m.value for m in Init} == set(INITS)


def train(tmp_path, *extra):
    return runner.invoke(app, ["train", "--preset", "mnist-dcgan", "--data-dir", str(tmp_path), "--dim", "4",
                               "--batch-size", "8", "--out", str(tmp_path / "run"), "--device", "cpu", "--quiet",
                               "--log-every", "1", "--sample-every", "100", "--eval-every", "100", *extra])


@pytest.mark.slow
def test_init_travels_through_checkpoints_and_resume(tmp_path):
    write_mnist(tmp_path)
    r = train(tmp_path, "--init", "torch", "--iters", "1")
    assert r.exit_code == 0, r.output
    run = tmp_path / "run"
    assert json.loads((run / "options.json").read_text())["model"]["init"] == "torch"
    meta = checkpoint.read_meta(run / "generator.safetensors")
    assert meta["model"]["init"] == "torch"
    # `wgan sample` rebuilds G from the metadata alone
    r = runner.invoke(app, ["sample", str(run / "generator.safetensors"), "-n", "4", "-o", str(tmp_path / "x.npz")])
    assert r.exit_code == 0, r.output
    # the same command resumes; another initialisation is another model, refused with the difference named
    r = train(tmp_path, "--init", "torch", "--iters", "2")
    assert r.exit_code == 0, r.output
    r = train(tmp_path, "--init", "tflib", "--iters", "3")
    assert r.exit_code != 0 and "init" in r.output


@pytest.mark.slow
def test_default_spec_has_no_init_key(tmp_path):
    """A tflib run writes the same spec as before the option existed, so older runs still resume."""
    write_mnist(tmp_path)
    r = train(tmp_path, "--iters", "1")
    assert r.exit_code == 0, r.output
    assert "init" not in checkpoint.read_meta(tmp_path / "run" / "generator.safetensors")["model"]
