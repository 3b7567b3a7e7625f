#!/usr/bin/env bash
# Section 5.1 and Table 2: train K random architectures of Table 1 (around the DCGAN 32x32 nets) with the
# standard GAN and with WGAN-GP (and WGAN-LP, the one-sided penalty, for Appendix C) into one sweep folder, score
# each at the end, then count where each method succeeded with `wgan report --table2`.
#
#   examples/random_architectures.sh                       # the paper's sweep: 200 architectures, 100k iterations
#   OMP_NUM_THREADS=1 ARCHS=10 ITERS=60 BATCH=8 DATASET=fashion-mnist METHODS="gp gan" METRIC=fid EVAL_N=1000 \
#       EVAL_REF=runs/fmnist-test-2000.safetensors THRESHOLDS="250 300 350 400" \
#       examples/random_architectures.sh --n-val 64 --device cpu     # docs/experiments.md's small CPU run
#
# Each run gets Appendix B's settings from its method: GAN Adam (2e-4, 0.5, 0.999), WGAN-GP Adam (1e-4, 0, 0.9);
# a normalised critic (BatchNorm for GAN, LayerNorm under a penalty) gets a weight decay of 1e-3. The paper
# used ImageNet 32x32 and the Inception Score; any 32x32-capable data set works here (--size 32 resizes).
# Resumable: a finished run (its final checkpoint exists) is skipped, an interrupted one resumes; a run that
# diverged is marked with a DIVERGED file and skipped next time (delete the file to try again); it counts as a
# failure in Table 2. Extra arguments go to every `wgan train`.
set -euo pipefail
ARCHS=${ARCHS:-200}                       # architectures: --arch-seed 0 .. ARCHS-1
ITERS=${ITERS:-100000}                    # generator iterations per run (the paper: 100k)
DATASET=${DATASET:-cifar10}
BATCH=${BATCH:-64}
METHODS=${METHODS:-"gan gp lp"}           # gan: standard GAN; gp: WGAN-GP; lp: WGAN-LP (Appendix C)
METRIC=${METRIC:-is}                      # scored once, at the end: is (the paper) or fid
EVAL_N=${EVAL_N:-10000}                   # generated images per score
EVAL_REF=${EVAL_REF:-$DATASET:train}      # FID's reference (a split, an .npz or a --save-stats file)
THRESHOLDS=${THRESHOLDS:-"1 3 5 7 9"}     # Table 2's thresholds (the paper's, for IS)
SWEEP=${SWEEP:-runs/random-architectures}
REPORT=${REPORT:-$SWEEP-report}
mkdir -p "$SWEEP"
final=$(printf "ckpt-%07d.safetensors" "$ITERS")
for ((k = 0; k < ARCHS; k++)); do
    for method in $METHODS; do
        out=$(printf "%s/arch%03d-%s" "$SWEEP" "$k" "$method")
        if [[ -f $out/$final || -f $out/DIVERGED ]]; then
            echo "skipping $out (finished)"
            continue
        fi
        case $method in
            gan) objective=(--objective gan) ;;
            gp | lp) objective=(--objective wgan --penalty "$method") ;;
            *) echo "unknown method $method (use gan, gp, lp)" >&2; exit 2 ;;
        esac
        status=0
        wgan train --dataset "$DATASET" --size 32 --arch random --arch-seed "$k" "${objective[@]}" \
            --iters "$ITERS" --batch-size "$BATCH" --eval-every "$ITERS" --eval-metrics "$METRIC" \
            --eval-n "$EVAL_N" --eval-ref "$EVAL_REF" --sample-every $(((ITERS + 9) / 10)) \
            --log-every $(((ITERS + 19) / 20)) --save-every $(((ITERS + 9) / 10)) --out "$out" --plain "$@" \
            || status=$?
        if ((status == 6)); then   # training diverged (non-finite loss): a failure, not worth redoing
            echo "diverged (exit 6)" > "$out/DIVERGED"
        elif ((status != 0)); then
            exit "$status"
        fi
    done
done
below=()
[[ $METRIC == fid ]] && below=(--below)
# shellcheck disable=SC2086
wgan report "$SWEEP"/* -o "$REPORT" --table2 "$METRIC" --thresholds $THRESHOLDS "${below[@]}"
