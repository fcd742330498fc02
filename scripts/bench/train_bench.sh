#!/usr/bin/env bash
# One FlavaForPreTraining training step (image-text batch: unmasked + masked passes, codebook targets,
# contrastive + ITM + MMM losses, backward, AdamW) ours vs PyTorch/transformers, same config, same inputs'
# shapes, median of N steps after a warm-up, peak RSS — at the small pretraining size and at FlavaConfig() size.
# ROUNDS=3 repeats each pair, alternating ours and PyTorch (shared VMs drift in speed over minutes).
#   bash scripts/bench/train_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${FLAVA_PEER_VENV:-/opt/venv-peer}/bin/python"
rounds="${ROUNDS:-1}"
swift build -c release --product flava-bench >/dev/null
cfg=$(mktemp --suffix .json)
for _ in $(seq "$rounds"); do
  .build/release/flava-bench train-step --size small --batch-size 32 --iterations 5 --dump-config "$cfg" --json | grep '^{'
  "$py" scripts/bench/torch_bench.py train-step --config "$cfg" --batch 32 --tokens 32 --iterations 5
done
for _ in $(seq "$rounds"); do
  .build/release/flava-bench train-step --size full --batch-size 4 --iterations 2 --json | grep '^{'
  "$py" scripts/bench/torch_bench.py train-step --batch 4 --tokens 77 --iterations 2
done
rm -f "$cfg"
