"""`wgan train --preset mnist-dcgan` and a plain PyTorch loop differ only in the initialisation and the random
stream: from the same weights and the same random numbers, the engine on the real image pipeline (uint8 images,
x/255 in [0, 1], joint real+fake critic pass, foreach Adam, critic steps then the generator step) computes what
benchmarks/plain_mnist_loop.py's own `iteration` computes (separate real and fake passes, default Adam), in float64."""

import copy
import importlib.util

import pytest
import torch

from wgan_cli import models
from wgan_cli.config import IMAGE_PRESETS, TrainConfig, resolve_train
from wgan_cli.data.samplers import DeviceImages
from wgan_cli.engine import Engine
from paths import ROOT

pytestmark = pytest.mark.usefixtures("one_thread")


spec = importlib.util.spec_from_file_location(
    "plain_mnist_loop", ROOT / "benchmarks" / "plain_mnist_loop.py")
plain_loop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plain_loop)   # its loop runs only as a script


class Float64Images(DeviceImages):
    def sample(self, n, gen):
        x, y = super().sample(n, gen)
        return x.double(), y


@pytest.fixture
def float64():
    """In float32 the two loops agree to rounding, except where a true gradient is exactly zero (the critic's
    output bias cancels in mean D(fake) - mean D(real); so does the bias of a channel that stays on one side of
    the LeakyReLU): there Adam turns rounding noise into steps of +-lr, differently in each loop. In float64 the
    noise is far below Adam's eps, and everything else must agree to ~1e-12."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_engine_on_the_mnist_pipeline_matches_the_plain_loop(float64):
    torch.manual_seed(0)
    pool = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8)
    G, D = models.build({"arch": "dcgan", "dim": 4, "size": 28, "channels": 1, "z_dim": 128, "init": "torch"})
    G_ref, D_ref, G_start = copy.deepcopy(G), copy.deepcopy(D), copy.deepcopy(G)
    preset = {**IMAGE_PRESETS["mnist-dcgan"]["train"], "batch_size": 6}
    cfg = resolve_train(TrainConfig(seed=3), {"train": preset})
    assert (cfg.n_critic, cfg.gp_weight, cfg.lr, cfg.betas) == (5, 10.0, 1e-4, (0.5, 0.9))
    engine = Engine(G, D, Float64Images(pool, None, pixel_range="sigmoid"), cfg, "cpu")
    opt_g = torch.optim.Adam(G_ref.parameters(), lr=1e-4, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D_ref.parameters(), lr=1e-4, betas=(0.5, 0.9))
    gen = torch.Generator().manual_seed(3)

    def real_batch(B, gen):   # the engine's data path: uint8 pool, x/255
        return (pool[torch.randint(0, len(pool), (B,), generator=gen)].float() / 255).to(torch.get_default_dtype())

    for _ in range(3):
        engine.iteration()
        plain_loop.iteration(G_ref, D_ref, opt_g, opt_d, real_batch, 6, gen)
    for net, ref in ((engine.G, G_ref), (engine.D, D_ref)):
        for (name, p), q in zip(net.named_parameters(), ref.parameters()):
            # a gradient's rounding error d moves Adam's step lr * g / (|g| + eps) by at most lr * d / eps; in
            # float64 d stays below ~1e-15 for these sums of order-1 terms, so 1e-4 * 1e-15 / 1e-8 = 1e-11 per step,
            # 2e-10 over the 18 steps here; in float32 (d ~ 1e-8 ~ eps) it would be up to 2 * lr per step
            assert (p - q).abs().max() < 1e-9, name
    # and training did move the weights (15 critic and 3 generator Adam steps of about lr each)
    assert max((p - q).abs().max().item() for p, q in zip(engine.G.parameters(), G_start.parameters())) > 1e-4
