"""The character-level language model of gan_language.py (Section 5.5, Table 4): 1-D convolutional ResNets.

The generator outputs a softmax over the vocabulary at every position and the critic reads it directly (no
sampling, so the generator is differentiable end to end); real sentences reach the critic as one-hot vectors.
Both tensors are (B, T, V), so the gradient penalty's per-sample norm runs over (position, vocab).
"""

from __future__ import annotations

import torch
from torch import nn

RESIDUAL_SCALE = 0.3   # gan_language.py: `return inputs + (0.3*output)`


class ResBlock(nn.Module):
    """ReLU, conv1d k5, ReLU, conv1d k5; out = x + 0.3 * res. Length-preserving ('SAME' padding)."""

    def __init__(self, dim: int, kernel: int = 5):
        super().__init__()
        self.res = nn.Sequential(nn.ReLU(), nn.Conv1d(dim, dim, kernel, padding=kernel // 2),
                                 nn.ReLU(), nn.Conv1d(dim, dim, kernel, padding=kernel // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, dim, T) -> (B, dim, T)
        return x + RESIDUAL_SCALE * self.res(x)


class Generator(nn.Module):
    """z (B, 128) -> Linear -> (B, dim, T) -> 5 ResBlocks -> conv1d k1 -> softmax over V -> (B, T, V)."""

    def __init__(self, vocab_size: int, seq_len: int = 32, dim: int = 512, z_dim: int = 128, n_blocks: int = 5):
        super().__init__()
        self.z_dim, self.seq_len, self.dim, self.vocab_size, self.n_classes = z_dim, seq_len, dim, vocab_size, 0
        self.fc = nn.Linear(z_dim, seq_len * dim)
        self.blocks = nn.Sequential(*[ResBlock(dim) for _ in range(n_blocks)])
        self.out = nn.Conv1d(dim, vocab_size, 1)

    def logits(self, z: torch.Tensor) -> torch.Tensor:  # (B, z_dim) -> (B, T, V)
        h = self.fc(z).view(-1, self.dim, self.seq_len)   # channels first, as the official reshape
        return self.out(self.blocks(h)).transpose(1, 2)

    def forward(self, z: torch.Tensor, y=None) -> torch.Tensor:  # (B, z_dim) -> (B, T, V), rows sum to 1
        return torch.softmax(self.logits(z), dim=-1)


class Critic(nn.Module):
    """(B, T, V) one-hot or softmax -> conv1d k1 (V -> dim) -> 5 ResBlocks -> flatten -> Linear -> (B,)."""

    def __init__(self, vocab_size: int, seq_len: int = 32, dim: int = 512, n_blocks: int = 5):
        super().__init__()
        self.inp = nn.Conv1d(vocab_size, dim, 1)
        self.blocks = nn.Sequential(*[ResBlock(dim) for _ in range(n_blocks)])
        self.fc = nn.Linear(seq_len * dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, V) -> (B,)
        h = self.blocks(self.inp(x.transpose(1, 2)))      # (B, dim, T)
        return self.fc(h.flatten(1)).squeeze(1)


def text_resnet(*, vocab_size: int, seq_len: int = 32, dim: int = 512, z_dim: int = 128,
                n_blocks: int = 5) -> tuple[nn.Module, nn.Module]:
    return (Generator(vocab_size, seq_len, dim, z_dim, n_blocks), Critic(vocab_size, seq_len, dim, n_blocks))
