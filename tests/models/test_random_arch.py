"""Section 5.1's random architectures: the Table 1 sampler and the nets built from its draws."""

import json
import math

import pytest
import torch
from torch import nn

from wgan_cli import models
from wgan_cli.errors import UsageError
from wgan_cli.models.image import LayerNorm2d
from wgan_cli.models.random_arch import (TABLE1, SmoothElu, critic_norm_for, random_dcgan, random_spec,
                                         sample_architecture)

ACTIVATION_TYPES = {"relu": nn.ReLU, "lrelu": nn.LeakyReLU, "softplus": SmoothElu, "tanh": nn.Tanh}
WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, LayerNorm2d)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def count(net: nn.Module, types) -> int:
    return sum(isinstance(m, types) for m in net.modules())


def activations(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, tuple(ACTIVATION_TYPES.values()))]


def test_sampler_covers_table1_and_returns_json():
    seen = {key: set() for key in TABLE1}
    for seed in range(300):
        arch = sample_architecture(seed)
        assert set(arch) == set(TABLE1)
        assert json.loads(json.dumps(arch)) == arch   # plain JSON values, as options.json stores them
        for key, value in arch.items():
            seen[key].add(value)
    for key, choices in TABLE1.items():
        assert seen[key] == set(choices), key
    assert TABLE1["g_depth"] == (4, 8, 12, 20) and TABLE1["g_dim"] == (32, 64, 128)


def test_sampler_is_deterministic_and_ignores_torch_rng():
    torch.manual_seed(0)
    a = [sample_architecture(s) for s in range(20)]
    state = torch.get_rng_state()
    torch.manual_seed(12345)
    b = [sample_architecture(s) for s in range(20)]
    assert a == b
    torch.manual_seed(0)
    assert torch.equal(torch.get_rng_state(), state)   # sampling did not draw from torch's generator
    assert len({json.dumps(x, sort_keys=True) for x in a}) > 15   # different seeds name different nets


def test_sampler_refuses_a_non_integer_seed():
    with pytest.raises(UsageError):
        sample_architecture("7")


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_built_nets_follow_the_sampled_architecture(seed):
    arch = sample_architecture(seed)
    G, D = random_dcgan(**arch)   # a normalised critic defaults to LayerNorm
    # depth = weight layers on the path (Linear + convolutions)
    assert count(G, WEIGHT_LAYERS) == arch["g_depth"]
    assert count(D, WEIGHT_LAYERS) == arch["d_depth"]
    # the sampled nonlinearity after every weight layer but the output one (G's output is tanh, functional)
    g_acts, d_acts = activations(G), activations(D)
    assert len(g_acts) == arch["g_depth"] - 1 and len(d_acts) == arch["d_depth"] - 1
    assert all(type(m) is ACTIVATION_TYPES[arch["g_nonlinearity"]] for m in g_acts)
    assert all(type(m) is ACTIVATION_TYPES[arch["d_nonlinearity"]] for m in d_acts)
    # norms: G after every hidden weight layer when on; D after all but the input layer, LayerNorm only
    assert count(G, NORMS) == (arch["g_depth"] - 1 if arch["g_batchnorm"] else 0)
    assert count(G, LayerNorm2d) == 0
    assert count(D, LayerNorm2d) == (arch["d_depth"] - 2 if arch["d_normalise"] else 0)
    assert count(D, (nn.BatchNorm1d, nn.BatchNorm2d)) == 0
    # widths: G starts at 4 * g_dim on 4x4, D's first conv has d_dim filters and ends at 4 * d_dim
    assert G.fc.out_features == 4 * 4 * 4 * arch["g_dim"]
    d_convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert d_convs[0].out_channels == arch["d_dim"] and d_convs[-1].out_channels == 4 * arch["d_dim"]
    assert D.fc.in_features == 4 * 4 * 4 * arch["d_dim"]
    assert G.z_dim == 128 and G.n_classes == 0 and G.pixel_range == "tanh"


def test_the_sampled_seeds_above_span_the_depths():
    """The structural test above sees shallow and deep nets, not one depth only."""
    depths = {sample_architecture(s)[k] for s in range(5) for k in ("g_depth", "d_depth")}
    assert len(depths) >= 3, depths


@pytest.mark.parametrize("g_depth,d_depth", [(4, 4), (8, 12), (20, 20)])
@pytest.mark.parametrize("nonlin", ["relu", "softplus"])
def test_shapes(g_depth, d_depth, nonlin):
    torch.manual_seed(0)
    G, D = random_dcgan(g_nonlinearity=nonlin, d_nonlinearity="lrelu", g_depth=g_depth, d_depth=d_depth,
                        g_batchnorm=True, d_normalise=True, g_dim=2, d_dim=2, z_dim=8)
    z = torch.randn(3, 8)
    x = G(z)
    assert x.shape == (3, 3, 32, 32) and x.abs().max() <= 1
    assert D(x).shape == (3,)
    assert count(G, WEIGHT_LAYERS) == g_depth and count(D, WEIGHT_LAYERS) == d_depth


def test_depth4_is_the_dcgan_skeleton():
    G, D = random_dcgan(g_nonlinearity="relu", d_nonlinearity="lrelu", g_depth=4, d_depth=4, g_batchnorm=True,
                        d_normalise=False, g_dim=4, d_dim=4, z_dim=8)
    assert [type(m) for m in G.net if isinstance(m, WEIGHT_LAYERS)] == [nn.ConvTranspose2d] * 3
    assert [(m.kernel_size, m.stride) for m in D.net if isinstance(m, nn.Conv2d)] == [((5, 5), (2, 2))] * 3
    assert next(m for m in D.modules() if isinstance(m, nn.LeakyReLU)).negative_slope == 0.2


def test_extra_layers_spread_evenly_over_the_resolutions():
    """Depth 12 = the 4-layer skeleton + 8 stride-1 3x3 convs: 3, 3, 2 per resolution (remainder nearest the
    image: the last stages of G, the first of D)."""
    G, D = random_dcgan(g_nonlinearity="relu", d_nonlinearity="relu", g_depth=12, d_depth=12, g_batchnorm=False,
                        d_normalise=False, g_dim=2, d_dim=2, z_dim=4)
    g_extra = [m for m in G.net if isinstance(m, nn.Conv2d)]   # G's resampling layers are ConvTranspose2d
    assert all(m.stride == (1, 1) and m.kernel_size == (3, 3) for m in g_extra)
    assert [m.in_channels for m in g_extra] == [8] * 2 + [4] * 3 + [2] * 3   # widths 4g, 2g, g at 4, 8, 16 px
    d_extra = [m for m in D.net if isinstance(m, nn.Conv2d) and m.stride == (1, 1)]
    assert all(m.kernel_size == (3, 3) for m in d_extra)
    assert [m.out_channels for m in d_extra] == [2] * 3 + [4] * 3 + [8] * 2   # at 16, 8, 4 px


def test_batchnorm_critic_for_the_standard_gan():
    _, D = random_dcgan(g_nonlinearity="relu", d_nonlinearity="tanh", g_depth=4, d_depth=8, g_batchnorm=False,
                        d_normalise=True, g_dim=2, d_dim=2, critic_norm="batchnorm")
    assert count(D, nn.BatchNorm2d) == 6 and count(D, LayerNorm2d) == 0
    _, D = random_dcgan(g_nonlinearity="relu", d_nonlinearity="tanh", g_depth=4, d_depth=8, g_batchnorm=False,
                        d_normalise=False, g_dim=2, d_dim=2)
    assert count(D, NORMS) == 0


def test_critic_norm_follows_the_penalty_and_the_spec_rebuilds_the_nets():
    assert [critic_norm_for(True, p) for p in ("gp", "lp", "none", "clip")] == ["layernorm", "layernorm",
                                                                                "batchnorm", "batchnorm"]
    assert critic_norm_for(False, "gp") == critic_norm_for(False, "none") == "none"
    spec = random_spec(8, size=32, channels=1, z_dim=16, penalty="none")
    assert json.loads(json.dumps(spec)) == spec   # plain JSON values: a checkpoint header stores it
    assert spec == {"arch": "random", **sample_architecture(8), "size": 32, "channels": 1, "z_dim": 16,
                    "critic_norm": "batchnorm"}
    torch.manual_seed(0)
    G, D = models.build(spec)   # through the registry, from the spec alone
    torch.manual_seed(0)
    G2, _ = random_dcgan(**{k: v for k, v in spec.items() if k != "arch"})
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), G2.state_dict().values()))
    assert count(D, nn.BatchNorm2d) == spec["d_depth"] - 2
    x = G(torch.randn(2, 16), None)   # every generator takes (z, y=None)
    assert x.shape == (2, 1, 32, 32) and D(x).shape == (2,)
    assert models.ARCHS["random"].sizes == (32,) and not models.ARCHS["random"].conditional


def test_smooth_elu_values():
    x = torch.tensor([-30.0, -5.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 9.5, 10.0, 40.0], dtype=torch.float64)
    got = SmoothElu()(x)
    expected = [math.log1p(math.exp(2 * v + 2)) / 2 - 1 for v in x.tolist()]
    assert got.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert float(SmoothElu()(torch.tensor(-1.0))) == pytest.approx(math.log(2) / 2 - 1)   # softplus(0) = ln 2
    assert float(SmoothElu()(torch.tensor(40.0))) == pytest.approx(40.0)   # tends to x


def test_refusals():
    arch = dict(g_nonlinearity="relu", d_nonlinearity="relu", g_depth=4, d_depth=4, g_batchnorm=True,
                d_normalise=True, g_dim=2, d_dim=2)
    with pytest.raises(UsageError, match="elu"):
        random_dcgan(**{**arch, "g_nonlinearity": "elu"})
    with pytest.raises(UsageError, match="d_depth 3"):
        random_dcgan(**{**arch, "d_depth": 3})
    with pytest.raises(UsageError, match="groupnorm"):
        random_dcgan(**arch, critic_norm="groupnorm")
    with pytest.raises(UsageError, match="without normalisation"):
        random_dcgan(**{**arch, "d_normalise": False}, critic_norm="layernorm")
    with pytest.raises(UsageError, match="conditional"):
        random_dcgan(**arch, n_classes=10)


# ---- through `wgan train`, `wgan sample` -------------------------------------------------------------------
def train_random(tmp_path, *args):
    from standins import write_mnist
    from typer.testing import CliRunner

    from wgan_cli.cli import app

    write_mnist(tmp_path)
    return CliRunner().invoke(app, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--arch", "random",
                                    *args, "--batch-size", "4", "--n-val", "4", "--out", str(tmp_path / "run"),
                                    "--device", "cpu", "--quiet"])


@pytest.mark.slow
def test_train_random_architecture_end_to_end(tmp_path):
    """Architecture 8 (a normalised critic) with the standard GAN: two iterations; options.json and the
    checkpoints hold the drawn architecture, and `wgan sample` rebuilds the generator from either checkpoint."""
    from typer.testing import CliRunner

    from wgan_cli import checkpoint
    from wgan_cli.cli import app

    r = train_random(tmp_path, "--arch-seed", "8", "--objective", "gan", "--iters", "2", "--sample-every", "1",
                     "--eval-every", "2")
    assert r.exit_code == 0, r.output
    run = tmp_path / "run"
    options = json.loads((run / "options.json").read_text())
    expected = random_spec(8, size=32, channels=1, z_dim=128, penalty="none")
    assert options["image"]["arch_seed"] == 8 and options["model"] == expected
    assert expected["critic_norm"] == "batchnorm" and options["image"]["critic_norm"] == "batchnorm"
    assert options["image"]["dim"] is None and options["size"] == 32
    # Appendix B for the standard GAN, and the weight decay of a normalised critic
    train = options["train"]
    assert (train["optimizer"], train["lr"], train["betas"], train["n_critic"]) == ("adam", 2e-4, [0.5, 0.999], 1)
    assert train["weight_decay_d"] == 1e-3
    for name in ("generator.safetensors", "ckpt-0000002.safetensors"):
        meta = checkpoint.read_meta(run / name)
        assert meta["model"] == expected and meta["extra"]["arch_seed"] == 8
        G, _ = checkpoint.load_generator(run / name)
        assert sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules()) == 3
        out = tmp_path / f"{name}.png"
        s = CliRunner().invoke(app, ["sample", str(run / name), "-n", "4", "-o", str(out)])
        assert s.exit_code == 0 and out.is_file(), s.output
    assert len(list((run / "samples").glob("iter-*.png"))) == 2


@pytest.mark.parametrize("seed,objective,norm,decay", [
    (8, "wgan", LayerNorm2d, 1e-3),       # d_normalise: LayerNorm under the gradient penalty
    (8, "gan", nn.BatchNorm2d, 1e-3),     # ... BatchNorm for the standard GAN
    (0, "wgan", None, 0.0),               # no normalisation in D: no weight decay
])
def test_random_architecture_critic_and_optimisers(tmp_path, captured, seed, objective, norm, decay):
    r = train_random(tmp_path, "--arch-seed", str(seed), "--objective", objective)
    assert r.exit_code == 0, r.output
    engine = captured["engine"]
    drawn = sample_architecture(seed)
    assert drawn["d_normalise"] == (norm is not None)
    norms = [m for m in engine.D.modules() if isinstance(m, NORMS)]
    assert len(norms) == (drawn["d_depth"] - 2 if norm else 0) and all(type(m) is norm for m in norms)
    assert [g["weight_decay"] for g in engine.opt_d.param_groups] == [decay]
    assert [g["weight_decay"] for g in engine.opt_g.param_groups] == [0.0]   # the generator never decays
    assert count(engine.G, WEIGHT_LAYERS) == drawn["g_depth"] and count(engine.D, WEIGHT_LAYERS) == drawn["d_depth"]
    expected = (2e-4, (0.5, 0.999)) if objective == "gan" else (1e-4, (0.0, 0.9))
    assert (engine.cfg.lr, engine.cfg.betas) == expected


def test_a_preset_with_random_architectures_keeps_the_drawn_widths(tmp_path, captured):
    r = train_random(tmp_path, "--preset", "mnist-dcgan", "--arch-seed", "8", "--size", "32")
    assert r.exit_code == 0, r.output
    options = json.loads((tmp_path / "run" / "options.json").read_text())
    assert options["model"] == random_spec(8, size=32, channels=1, penalty="gp")
    assert options["train"]["batch_size"] == 4 and options["train"]["betas"] == [0.5, 0.9]   # the preset's Adam


@pytest.mark.parametrize("args,words", [
    (["--arch-seed", "3", "--arch", "dcgan"], "needs --arch random"),
    (["--dim", "16"], "--dim does not apply"),
    (["--arch-seed", "8", "--critic-norm", "none"], "normalises D"),
    (["--arch-seed", "0", "--critic-norm", "layernorm"], "no normalisation in D"),
    (["--conditional"], "--conditional"),
    (["--size", "64"], "works at 32 pixels"),
])
def test_random_architecture_refusals(tmp_path, args, words):
    r = train_random(tmp_path, *args)
    assert r.exit_code == 2, r.output
    assert words in r.output
    assert not (tmp_path / "run").exists()   # refused before the run directory is made
