#!/usr/bin/env bash
# gan_mnist.py: WGAN-GP on MNIST. DIM 64, batch 50, n_critic 5, lambda 10, Adam 1e-4 (0.5, 0.9), 200k iterations,
# sigmoid output, data in [0, 1]. torchvision downloads MNIST into ./data on the first run.
set -euo pipefail
OUT=${OUT:-runs/mnist-dcgan}
wgan train --preset mnist-dcgan --out "$OUT"
wgan sample "$OUT/generator.safetensors" -n 64 -o "$OUT/samples.png"
