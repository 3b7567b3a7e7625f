"""Section 5.1's random architectures: the Table 1 sampler and the nets built from its draws."""

import json
import math

import pytest
import torch
from torch import nn

from wgan_cli.errors import UsageError
from wgan_cli.models.image import LayerNorm2d
from wgan_cli.models.random_arch import TABLE1, SmoothElu, random_dcgan, sample_architecture

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
    G, D = random_dcgan(**arch, critic_norm_kind="layernorm")
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
    assert G.z_dim == 128 and G.n_classes == 0 and G.output == "tanh"


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
                        d_normalise=True, g_dim=2, d_dim=2, critic_norm_kind="batchnorm")
    assert count(D, nn.BatchNorm2d) == 6 and count(D, LayerNorm2d) == 0
    _, D = random_dcgan(g_nonlinearity="relu", d_nonlinearity="tanh", g_depth=4, d_depth=8, g_batchnorm=False,
                        d_normalise=False, g_dim=2, d_dim=2, critic_norm_kind="batchnorm")
    assert count(D, NORMS) == 0   # the kind applies only when d_normalise is true


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
        random_dcgan(**arch, critic_norm_kind="groupnorm")
    with pytest.raises(UsageError, match="conditional"):
        random_dcgan(**arch, n_classes=10)
