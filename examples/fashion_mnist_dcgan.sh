#!/usr/bin/env bash
# The CPU run of docs/train-fashion-mnist.md: gan_mnist.py's nets at DIM 32 on Fashion-MNIST, 2,000 generator
# iterations on one thread, then resumed to 3,000. The data comes from Debian's dataset-fashion-mnist
# (/usr/share/datasets/fashion-mnist) where installed; otherwise torchvision downloads it into ./data.
set -euo pipefail
OUT=${OUT:-runs/fmnist-dcgan}
OMP_NUM_THREADS=1 wgan train --preset mnist-dcgan --dataset fashion-mnist --dim 32 --iters 2000 \
    --log-every 50 --save-every 500 --sample-every 250 --eval-every 250 --out "$OUT" --plain
# docs/train-fashion-mnist.md then resumed the same run to 3,000 iterations (the same command, --iters 3000):
OMP_NUM_THREADS=1 wgan train --preset mnist-dcgan --dataset fashion-mnist --dim 32 --iters 3000 \
    --log-every 50 --save-every 500 --sample-every 250 --eval-every 250 --out "$OUT" --plain
wgan sample "$OUT/generator.safetensors" -n 64 --seed 1 -o "$OUT/samples.png"
