"""A plain PyTorch WGAN-GP loop: gan_mnist.py's nets and hyperparameters, nothing else. The reference that
`wgan train --preset mnist-dcgan` is compared against in docs/train-fashion-mnist.md.

DIM 64, batch 50, n_critic 5, lambda 10, Adam 1e-4 (0.5, 0.9), data x/255 in [0, 1], z ~ N(0, I_128). PyTorch's
default initialisation (--init tflib: gan_mnist.py's); real batches drawn uniformly with replacement; noise, data
indices and interpolation weights from the global RNG seeded with --seed. At each --save-at iteration it writes
N samples as uint8 (N, 28, 28, 1) under "images" in OUT/samples-ITER.npz (`wgan score` reads it) and appends
{"iters", "wall_s"} (training time only) to OUT/times.jsonl.

    OMP_NUM_THREADS=1 python benchmarks/plain_mnist_loop.py --seed 0 --iters 1200 --save-at 300,1200 --out runs/quality/plain-s0
"""
import argparse, gzip, json, math, os, time

import numpy as np
import torch
from torch import nn


class Generator(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.fc = nn.Linear(128, 4 * 4 * 4 * dim)
        self.up1 = nn.ConvTranspose2d(4 * dim, 2 * dim, 5, 2, padding=2, output_padding=1)
        self.up2 = nn.ConvTranspose2d(2 * dim, dim, 5, 2, padding=2, output_padding=1)
        self.up3 = nn.ConvTranspose2d(dim, 1, 5, 2, padding=2, output_padding=1)

    def forward(self, z):  # (B, 128) -> (B, 1, 28, 28)
        x = torch.relu(self.fc(z)).view(-1, 4 * self.dim, 4, 4)
        x = torch.relu(self.up1(x))[:, :, :7, :7]
        return torch.sigmoid(self.up3(torch.relu(self.up2(x))))


def critic(dim: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, dim, 5, 2, 2), nn.LeakyReLU(0.2), nn.Conv2d(dim, 2 * dim, 5, 2, 2),
                         nn.LeakyReLU(0.2), nn.Conv2d(2 * dim, 4 * dim, 5, 2, 2), nn.LeakyReLU(0.2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4 * dim, 1))


def tflib_init(*nets: nn.Module) -> None:
    """Uniform with std sqrt(4/(fan_in+fan_out)) for convs (fan/stride^2), Glorot linears, zero bias."""
    for m in [m for net in nets for m in net.modules()]:
        if isinstance(m, nn.Linear):
            fan_in, fan_out, gain = m.in_features, m.out_features, 2.0
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            k2, s2 = m.weight[0, 0].numel(), m.stride[0] ** 2
            fan_in, fan_out, gain = m.in_channels * k2, m.out_channels * k2, 4.0
            fan_in, fan_out = (fan_in / s2, fan_out) if isinstance(m, nn.ConvTranspose2d) else (fan_in, fan_out / s2)
        else:
            continue
        bound = math.sqrt(3 * gain / (fan_in + fan_out))   # U(-b, b) has std b / sqrt(3)
        nn.init.uniform_(m.weight, -bound, bound)
        nn.init.zeros_(m.bias)


def iteration(G, D, opt_g, opt_d, real_batch, B: int = 50, gen: torch.Generator | None = None):
    """One generator iteration: 5 critic steps (data, noise, interpolation weights drawn in that order, from `gen`
    or the global RNG; `real_batch(B, gen)` draws the data), then the generator step. Returns (loss_d, loss_g)."""
    for _ in range(5):
        real = real_batch(B, gen)
        fake = G(torch.randn(B, 128, generator=gen)).detach()
        alpha = torch.rand(B, 1, 1, 1, generator=gen)
        x_hat = (real + alpha * (fake - real)).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        loss_d = D(fake).mean() - D(real).mean() + 10 * gp
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
    loss_g = -D(G(torch.randn(B, 128, generator=gen))).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d, loss_g


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iters", type=int, default=1200, help="generator iterations")
    p.add_argument("--save-at", default="", help="comma list of iterations to sample at (the last always)")
    p.add_argument("--init", choices=["torch", "tflib"], default="torch")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--n", type=int, default=1000, help="samples written at each --save-at")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
    p.add_argument("--out", default="runs/quality/plain")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(args.seed)
    with gzip.open(args.data) as f:   # IDX: 16-byte header, then uint8 pixels
        data = torch.from_numpy(np.frombuffer(f.read(), np.uint8, offset=16).copy()).view(-1, 1, 28, 28).float() / 255
    G, D = Generator(args.dim), critic(args.dim)
    if args.init == "tflib":
        tflib_init(G, D)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.9))
    save_at = {int(s) for s in args.save_at.split(",") if s} | {args.iters}
    os.makedirs(args.out, exist_ok=True)
    wall = 0.0
    for it in range(1, args.iters + 1):
        t0 = time.perf_counter()
        loss_d, loss_g = iteration(G, D, opt_g, opt_d, lambda B, gen: data[torch.randint(len(data), (B,),
                                                                                          generator=gen)])
        wall += time.perf_counter() - t0
        if it in save_at:
            with torch.no_grad():
                z = torch.randn(args.n, 128, generator=torch.Generator().manual_seed(1))
                x = (G(z) * 255.99).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()   # int(g*255.99)
            np.savez(os.path.join(args.out, f"samples-{it}.npz"), images=x)
            with open(os.path.join(args.out, "times.jsonl"), "a") as f:
                f.write(json.dumps({"iters": it, "wall_s": round(wall, 2), "loss_d": loss_d.item(),
                                    "loss_g": loss_g.item()}) + "\n")


if __name__ == "__main__":
    main()
