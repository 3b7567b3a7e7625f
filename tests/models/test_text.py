"""The language GAN's networks and its gradient penalty over (position, vocab)."""

import torch
from torch import nn

from wgan_cli import models
from wgan_cli.data.text import TextSampler
from wgan_cli.penalties import gradient_penalty, has_batchnorm, interpolate, slopes


class LinearOnSequences(nn.Module):
    """D(x) = <w, x> over (position, vocab): its gradient is w at every x, so the per-sample norm is ||w||."""

    def __init__(self, T, V, norm):
        super().__init__()
        w = torch.randn(T, V, generator=torch.Generator().manual_seed(0))
        self.w = nn.Parameter(w / w.norm() * norm)

    def forward(self, x):   # (B, T, V) -> (B,)
        return (x * self.w).sum((1, 2))


def tiny(V=11, T=8, dim=16):
    return models.build({"arch": "text-resnet", "vocab_size": V, "seq_len": T, "dim": dim, "z_dim": 128,
                         "n_blocks": 5})


def test_generator_softmax_and_critic_scores_shapes():
    G, D = tiny()
    x = G(torch.randn(4, 128))
    assert x.shape == (4, 8, 11) and torch.allclose(x.sum(-1), torch.ones(4, 8), atol=1e-6)
    assert D(x).shape == (4,) and not has_batchnorm(D)
    assert sum(isinstance(m, nn.Conv1d) for m in G.modules()) == 5 * 2 + 1   # 5 ResBlocks + the k1 output conv


def test_gradient_penalty_is_per_sample_over_position_and_vocab():
    T, V = 8, 11
    G, _ = tiny(V, T)
    real, _ = TextSampler(torch.randint(0, V, (40, T)), V).sample(32, torch.Generator().manual_seed(0))
    fake = G(torch.randn(32, 128)).detach()
    gen = torch.Generator().manual_seed(1)
    gp = gradient_penalty(LinearOnSequences(T, V, 5.0), real, fake, gen)
    assert abs(gp.item() - 16.0) < 1e-3   # (||w|| - 1)^2 with ||w|| = 5 over the whole (T, V) block
    # alpha is one number per sample: (B, 1, 1)
    x_hat = interpolate(torch.zeros(6, T, V), torch.ones(6, T, V), torch.Generator().manual_seed(2))
    assert torch.equal(x_hat.amin((1, 2)), x_hat.amax((1, 2)))
    # and for the real critic each slope is that sample's gradient norm over (T, V)
    _, D = tiny(V, T)
    x = real[:3].clone().requires_grad_(True)
    grads = [torch.autograd.grad(D(x[i: i + 1]).sum(), x)[0][i] for i in range(3)]
    expected = torch.stack([g.norm() for g in grads])
    assert torch.allclose(slopes(D, real[:3]), expected, atol=1e-5)
