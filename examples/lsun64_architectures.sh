#!/usr/bin/env bash
# Figure 2 (gan_64x64.py): LSUN bedrooms at 64x64, each architecture trained with the four methods the paper
# compares: DCGAN, LSGAN, WGAN (weight clipping) and WGAN-GP. DIM 64, batch 64, 200k iterations.
# Under the gradient penalty the critic uses LayerNorm; the baselines use BatchNorm, as gan_64x64.py does
# (except the "no normalisation anywhere" row). Needs `pip install 'wgan-cli[lsun]'` and bedroom_train_lmdb
# in ./data (LSUN's download.py).
set -euo pipefail
ROOT=${ROOT:-runs/lsun64}
COMMON=(--dataset lsun-bedroom --size 64 --dim 64 --batch-size 64 --iters 200000)
declare -A ARCHS=(
    [dcgan]="--arch dcgan"
    [constant-filters]="--arch dcgan --variant constant-filters"   # G: no BN, constant filter count
    [mlp]="--arch mlp"                                             # G: 4-layer 512-wide ReLU MLP
    [no-norm]="--arch dcgan --variant no-norm"                     # no normalisation in G or D
    [gated]="--arch dcgan --variant gated"                         # gated multiplicative nonlinearities
    [tanh]="--arch dcgan --variant tanh"                           # tanh nonlinearities
    [resnet101]="--arch resnet101"                                 # 101-layer ResNet G and D
)
declare -A METHODS=(
    [dcgan]="--objective gan"
    [lsgan]="--objective lsgan"
    [wgan-clip]="--objective wgan --penalty clip"
    [wgan-gp]="--objective wgan --penalty gp"
)
for arch in "${!ARCHS[@]}"; do
    for method in "${!METHODS[@]}"; do
        norm=(--critic-norm batchnorm)
        [[ $method == wgan-gp ]] && norm=(--critic-norm layernorm)
        [[ $arch == no-norm ]] && norm=()
        # shellcheck disable=SC2086
        wgan train "${COMMON[@]}" ${ARCHS[$arch]} ${METHODS[$method]} "${norm[@]}" --out "$ROOT/$arch-$method"
        wgan sample "$ROOT/$arch-$method/generator.safetensors" -n 64 -o "$ROOT/$arch-$method.png"
    done
done
# The "Good" 64x64 ResNet of gan_64x64.py, WGAN-GP:
wgan train --preset lsun64-resnet --out "$ROOT/resnet64-wgan-gp"
