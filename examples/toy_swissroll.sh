#!/usr/bin/env bash
# gan_toy.py on the swiss roll, paper settings; then the weight-clipping baseline for comparison.
set -euo pipefail
wgan toy --dataset swissroll --iters "${ITERS:-2000}" --out "${OUT:-runs/toy-swissroll}"
wgan toy --dataset swissroll --penalty clip --iters "${ITERS:-2000}" --out "${OUT:-runs/toy-swissroll}-clip"
