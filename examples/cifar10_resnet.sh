#!/usr/bin/env bash
# gan_cifar_resnet.py = Appendix F, Table 3 unsupervised (IS 7.86 +- .07): batch 64 (generator step on 128),
# n_critic 5, lambda 10, Adam 2e-4 (0, 0.9) decayed linearly to 0, 100k iterations, dequantised data.
set -euo pipefail
OUT=${OUT:-runs/cifar10-resnet}
wgan train --preset cifar10-resnet --out "$OUT"
wgan sample "$OUT/generator.safetensors" -n 64 -o "$OUT/samples.png"
wgan sample "$OUT/generator.safetensors" -n 50000 -o "$OUT/samples.npz"   # IS over 50k samples, 10 splits
