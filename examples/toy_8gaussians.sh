#!/usr/bin/env bash
# gan_toy.py on 8 gaussians at the paper's settings (lambda 0.1, n_critic 5, batch 256, Adam 1e-4 (0.5, 0.9)).
# The paper ran 100,000 iterations; 2,000 already cover all 8 modes. Prints W1 and mode coverage.
set -euo pipefail
wgan toy --dataset 8gaussians --iters "${ITERS:-2000}" --out "${OUT:-runs/toy-8gaussians}"
wgan sample "${OUT:-runs/toy-8gaussians}/generator.safetensors" -n 1000 -o "${OUT:-runs/toy-8gaussians}/points.csv"
