#!/usr/bin/env bash
# Evaluates a checkpoint of `flava pretrain` on the synthetic world's held-out scenes (colour–shape combinations
# never seen in training): zero-shot classification, retrieval, the linear probe and the VQA-style fine-tune,
# each from the CLI, and prints one results table against chance / the majority baseline.
#   bash scripts/eval.sh [CHECKPOINT] [OUT]     (default runs/pretrain/best; results in OUT, default runs/eval,
#                                              and OUT/summary.json)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-runs/pretrain/best}"
OUT="${2:-runs/eval}"
FLAVA=.build/release/flava
[ -x "$FLAVA" ] || bash scripts/setup.sh
[ -d "$MODEL" ] || { echo "error: $MODEL: no such checkpoint (run bash scripts/main.sh first)" >&2; exit 1; }
mkdir -p "$OUT"

# Held-out scenes on disk: 8 colour–shape classes for zero-shot and retrieval; shapes (6 classes) in disjoint
# train / validation / test sets for the linear probe.
$FLAVA data export --split held_out --count 120 --label class --output "$OUT/zeroshot"
$FLAVA data export --split held_out --start 1000 --count 120 --label shape --output "$OUT/probe_train"
$FLAVA data export --split held_out --start 2000 --count 60 --label shape --output "$OUT/probe_validation"
$FLAVA data export --split held_out --start 3000 --count 120 --label shape --output "$OUT/probe_test"

$FLAVA eval zero-shot --model "$MODEL" --folder "$OUT/zeroshot" --templates plain --summary "$OUT/zeroshot.json"
$FLAVA eval retrieval --model "$MODEL" --manifest "$OUT/zeroshot/captions.jsonl" --summary "$OUT/retrieval.json"
$FLAVA eval linear-probe --model "$MODEL" --train "$OUT/probe_train" --validation "$OUT/probe_validation" \
    --test "$OUT/probe_test" --cache "$OUT/probe_cache" --summary "$OUT/probe.json"
$FLAVA finetune --model "$MODEL" --task synthetic-vqa --output "$OUT/vqa" --summary "$OUT/vqa.json"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def load(name):
    with open(f"{out}/{name}.json") as f:
        return json.load(f)
z, r, p, v = load("zeroshot"), load("retrieval"), load("probe"), load("vqa")
def get(d, *keys):
    for k in keys:
        if k in d: return d[k]
    return float("nan")
rows = [
    ("zero-shot top-1, 8 held-out colour–shape classes", get(z, "top1_accuracy"), "1/8 = 0.125"),
    ("retrieval image→text R@1", get(r, "image_to_text_R@1"), "≈ 0.008"),
    ("retrieval text→image R@1", get(r, "text_to_image_R@1"), "≈ 0.008"),
    ("linear probe test accuracy, 6 shapes", get(p, "test_accuracy"), "1/6 = 0.167"),
    ("VQA accuracy, held-out scenes", get(v, "vqa_accuracy_held_out"), f"majority {get(v, 'majority_baseline', 'baseline'):.3f}"),
]
json.dump({name: val for name, val, _ in rows}, open(f"{out}/summary.json", "w"), indent=1)
print("\n| evaluation (held-out scenes) | value | chance / baseline |\n|---|---|---|")
for name, val, ref in rows:
    print(f"| {name} | {val:.3f} | {ref} |")
PY
