#!/usr/bin/env bash
# Figure 1 of the paper: (a) critic value surfaces against a fixed generator, clipping vs GP, three datasets;
# (b) gradient norms through a 12-layer critic on swiss roll, clipping c in {0.1, 0.01, 0.001} vs GP.
set -euo pipefail
OUT=${1:-docs/figures}
wgan toy --figure value-surface --iters 300 --out "$OUT"
wgan toy --figure gradnorm --iters 100 --out "$OUT"
