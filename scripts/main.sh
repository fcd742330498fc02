#!/usr/bin/env bash
# The main job: pretrain a small FLAVA on the built-in synthetic world (a WordPiece vocabulary and a visual
# codebook first), then evaluate it zero-shot on held-out scenes and print the table against chance.
# Everything lands in runs/pretrain (checkpoints, metrics.jsonl, report.svg, summary.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs/pretrain
.build/release/flava pretrain --output runs/pretrain --summary runs/pretrain/summary.json "$@"
