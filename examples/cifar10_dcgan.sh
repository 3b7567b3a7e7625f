#!/usr/bin/env bash
# gan_cifar.py (Figure 3): the DCGAN-like nets on CIFAR-10. DIM 128, batch 64, n_critic 5, lambda 10,
# Adam 1e-4 (0.5, 0.9), 200k iterations; BN in G, none in the critic.
set -euo pipefail
OUT=${OUT:-runs/cifar10-dcgan}
wgan train --preset cifar10-dcgan --out "$OUT"
wgan sample "$OUT/generator.safetensors" -n 50000 -o "$OUT/samples.npz"   # for `wgan score`
