#!/usr/bin/env bash
# Figure 3: convergence of four methods on the DCGAN-like nets of gan_cifar.py (at 32x32), scored during training,
# drawn against generator iterations and against wall-clock time by `wgan report`.
#
#   examples/convergence.sh cifar10                   # the paper's setting: IS every 1000 iterations, 200k
#   OMP_NUM_THREADS=1 ITERS=600 DIM=16 BATCH=32 EVAL_EVERY=200 EVAL_METRICS=fid EVAL_N=500 \
#       EVAL_REF=runs/fmnist-test-2000.safetensors examples/convergence.sh fashion-mnist --n-val 256 --device cpu
#                                                     # docs/experiments.md's small CPU run
#
# The four methods (Section 5.2):
#   wgan-clip        WGAN with weight clipping (c = 0.01), RMSProp 5e-5, BatchNorm in the critic (gan_cifar.py)
#   wgan-gp-rmsprop  WGAN-GP with the same RMSProp 5e-5, no normalisation in the critic
#   wgan-gp-adam     WGAN-GP with Adam 1e-4 (0.5, 0.9)
#   dcgan            the standard (non-saturating) GAN, Adam 2e-4 (0.5, 0.999), BatchNorm in the critic
# Resumable: a finished run (its final checkpoint exists) is skipped, an interrupted one resumes. Extra
# arguments go to every `wgan train`.
set -euo pipefail
DATASET=${1:-cifar10}
shift || true
ITERS=${ITERS:-200000}
DIM=${DIM:-128}
BATCH=${BATCH:-64}
EVAL_EVERY=${EVAL_EVERY:-1000}
EVAL_METRICS=${EVAL_METRICS:-is}          # is needs the Inception weights' logits layer; fid works with any
EVAL_N=${EVAL_N:-1000}                    # the official gan_cifar.py scores 1,000 samples during training
EVAL_REF=${EVAL_REF:-$DATASET:train}
ROOT=${ROOT:-runs/convergence-$DATASET}
declare -A METHODS=(
    [wgan-clip]="--objective wgan --penalty clip --critic-norm batchnorm"
    [wgan-gp-rmsprop]="--objective wgan --penalty gp --optimizer rmsprop --lr 5e-5"
    [wgan-gp-adam]="--objective wgan --penalty gp --optimizer adam --lr 1e-4 --betas 0.5 0.9"
    [dcgan]="--objective gan --critic-norm batchnorm"
)
final=$(printf "ckpt-%07d.safetensors" "$ITERS")
for method in wgan-clip wgan-gp-rmsprop wgan-gp-adam dcgan; do
    out=$ROOT/$method
    if [[ -f $out/$final ]]; then
        echo "skipping $out (finished)"
        continue
    fi
    # shellcheck disable=SC2086
    wgan train --dataset "$DATASET" --size 32 --arch dcgan --dim "$DIM" --batch-size "$BATCH" --iters "$ITERS" \
        ${METHODS[$method]} --eval-every "$EVAL_EVERY" --eval-metrics "$EVAL_METRICS" --eval-n "$EVAL_N" \
        --eval-ref "$EVAL_REF" --sample-every $(((ITERS + 19) / 20)) --save-every "$EVAL_EVERY" \
        --log-every $((EVAL_EVERY >= 20 ? EVAL_EVERY / 20 : 1)) --out "$out" --plain "$@"
done
wgan report "$ROOT"/wgan-clip "$ROOT"/wgan-gp-rmsprop "$ROOT"/wgan-gp-adam "$ROOT"/dcgan -o "$ROOT-report"
