#!/usr/bin/env bash
# Table 3 supervised (IS 8.42 +- .10): Appendix F plus conditional BN in G and an auxiliary classifier head
# Linear(128 -> 10) in the critic (AC-WGAN-GP: 1.0 x CE on real labels for D, 0.1 x CE on sampled labels for G).
set -euo pipefail
OUT=${OUT:-runs/cifar10-resnet-cond}
wgan train --preset cifar10-resnet-cond --out "$OUT"
for k in 0 1 2 3 4 5 6 7 8 9; do
    wgan sample "$OUT/generator.safetensors" -n 10 --class "$k" -o "$OUT/class-$k.png"
done
wgan sample "$OUT/generator.safetensors" -n 50000 -o "$OUT/samples.npz"   # "labels" are stored too
