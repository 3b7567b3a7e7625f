#!/usr/bin/env bash
# Section 5.6, Figure 5b: a critic trained on a 1,000-image subset of MNIST overfits, with the gradient penalty
# and with weight clipping alike: its Wasserstein estimate on the training images parts from the estimate on
# held-out images. `wgan report` draws both (train-vs-validation.png).
#
#   examples/overfitting.sh                      # gan_mnist.py's nets at DIM 128, 1,000 images, 20k iterations
#   DATASET=fashion-mnist ITERS=2000 DIM=32 EVAL_EVERY=100 examples/overfitting.sh     # a short CPU run
#
# The subset is the first N training images (--train-images; MNIST's files are already in random order); the
# validation estimate uses the whole test split (--n-val images each time). A large critic: --dim 128, twice
# gan_mnist.py's DIM (wgan has one width option, so the generator grows with it). Resumable: a finished run is
# skipped, an interrupted one resumes. Extra arguments go to both `wgan train` commands.
set -euo pipefail
DATASET=${DATASET:-mnist}
N=${N:-1000}
DIM=${DIM:-128}
ITERS=${ITERS:-20000}
EVAL_EVERY=${EVAL_EVERY:-500}
ROOT=${ROOT:-runs/overfitting-$DATASET}
final=$(printf "ckpt-%07d.safetensors" "$ITERS")
for penalty in gp clip; do   # clip keeps its own RMSProp 5e-5 under the preset
    out=$ROOT/$penalty
    if [[ -f $out/$final ]]; then
        echo "skipping $out (finished)"
        continue
    fi
    wgan train --preset mnist-dcgan --dataset "$DATASET" --train-images "$N" --dim "$DIM" --penalty "$penalty" \
        --iters "$ITERS" --eval-every "$EVAL_EVERY" --n-val 1000 --sample-every "$EVAL_EVERY" \
        --save-every "$EVAL_EVERY" --log-every $(((EVAL_EVERY + 4) / 5)) --out "$out" --plain "$@"
done
wgan report "$ROOT/gp" "$ROOT/clip" -o "$ROOT-report"
