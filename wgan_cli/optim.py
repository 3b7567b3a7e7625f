"""Optimisers of a run and their state keyed by parameter name (`opt_d.net.0.weight.exp_avg`), not by position,
so a checkpoint names every tensor it holds."""

from __future__ import annotations

import torch
from torch import nn

from wgan_cli.config import TrainConfig
from wgan_cli.errors import UsageError


def make_optimizer(params, cfg: TrainConfig, device: torch.device, weight_decay: float = 0.0
                   ) -> torch.optim.Optimizer:
    """`weight_decay`: L2 weight decay added to the gradients (the critic's, cfg.weight_decay_d; Appendix B)."""
    params = list(params)
    # fused kernels on CUDA, multi-tensor (foreach) elsewhere: one launch per parameter group, not per tensor
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=weight_decay, **fast)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=weight_decay, foreach=True)
    raise UsageError(f"unknown optimizer {cfg.optimizer!r}", "use adam or rmsprop")


def optimizer_tensors(prefix: str, opt: torch.optim.Optimizer, module: nn.Module) -> dict[str, torch.Tensor]:
    """Optimiser state keyed by parameter name (`opt_d.net.0.weight.exp_avg`), not by position."""
    names = {id(p): n for n, p in module.named_parameters()}
    params = [p for group in opt.param_groups for p in group["params"]]
    out = {}
    for p in params:
        for key, value in opt.state.get(p, {}).items():
            if torch.is_tensor(value):
                out[f"{prefix}{names[id(p)]}.{key}"] = value
    return out


def load_optimizer_tensors(opt: torch.optim.Optimizer, module: nn.Module, tensors: dict[str, torch.Tensor]):
    names = {id(p): n for n, p in module.named_parameters()}
    params = [p for group in opt.param_groups for p in group["params"]]
    state = {}
    for index, p in enumerate(params):
        prefix = names[id(p)] + "."
        entry = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix) and "." not in k[len(prefix):]}
        if entry:
            state[index] = entry
    sd = opt.state_dict()
    opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
