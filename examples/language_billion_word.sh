#!/usr/bin/env bash
# Section 5.5 / Table 4: the character-level language GAN on the One Billion Word benchmark, as gan_language.py
# (32 characters, 1-D ResNets of width 512, n_critic 10, lambda 10, batch 64, Adam 1e-4 (0.5, 0.9), 200k iterations).
#
# `--corpus billion-word` downloads the benchmark (1.7 GB) once into the data directory (--data-dir, else
# $WGAN_DATA_DIR, else ./data) and reads
# training-monolingual.tokenized.shuffled/news.en-* one sentence per line, the first 10,000,000 lines, as the
# official code. Offline: download
#   http://www.statmt.org/lm-benchmark/1-billion-word-language-modeling-benchmark-r13output.tar.gz
# elsewhere, unpack it, and set CORPUS to the training-monolingual.tokenized.shuffled folder.
#
# A GPU is assumed (about 200k x 11 network passes). Ctrl-C saves; running the script again resumes.
set -euo pipefail
CORPUS=${CORPUS:-billion-word}
OUT=${OUT:-runs/language-billion-word}
WGAN=${WGAN:-wgan}   # or: WGAN="python -m wgan_cli" from a checkout

$WGAN textgen --corpus "$CORPUS" --out "$OUT" -o "$OUT/lm.safetensors" \
    --iters 200000 --eval-every 2000 --save-every 5000 "$@"

# Table 4-style samples from the trained generator (works on a CPU too)
$WGAN textgen --ckpt "$OUT/lm.safetensors" -n 20 --seed 0 --device cpu --out "$OUT/samples-final.txt"
cat "$OUT/samples-final.txt"
