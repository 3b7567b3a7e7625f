#!/usr/bin/env bash
# gan_toy.py on 25 gaussians (100,000 pre-generated points read in order), paper settings.
set -euo pipefail
wgan toy --dataset 25gaussians --iters "${ITERS:-2000}" --out "${OUT:-runs/toy-25gaussians}"
