#!/usr/bin/env bash
# A small offline run of the language GAN on WordNet usage examples (about 48k short sentences, mean 34 characters),
# on a CPU in about half an hour: the paper's model and hyperparameters at width 64 instead of 512, 2000 iterations.
# The numbers and samples it gave are in docs/textgen.md.
#
# Needs Debian's wordnet-base:  apt-get install -y --no-install-recommends wordnet-base
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-runs/language-wordnet}
WGAN=${WGAN:-wgan}   # or: WGAN="python -m wgan_cli" from a checkout
mkdir -p "$OUT"
python3 "$HERE/wordnet_sentences.py" /usr/share/wordnet > "$OUT/wordnet.txt"

OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} $WGAN textgen --corpus "$OUT/wordnet.txt" --out "$OUT" -o "$OUT/lm.safetensors" \
    --dim 64 --iters 2000 --eval-every 200 --save-every 200 --log-every 50 --seed 0 "$@"

$WGAN textgen --ckpt "$OUT/lm.safetensors" -n 20 --seed 0 --device cpu
# JS divergences of 640 samples against the whole corpus (the run's own numbers are against held-out lines)
$WGAN textgen --ckpt "$OUT/lm.safetensors" -n 1 --seed 0 --device cpu --eval "$OUT/wordnet.txt" | tail -1
