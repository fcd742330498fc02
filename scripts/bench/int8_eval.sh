#!/usr/bin/env bash
# int8 against float32 on a trained checkpoint: the held-out evaluations of scripts/eval.sh (zero-shot over the
# 8 held-out colour–shape classes, retrieval both ways, the linear probe of shapes) run with --precision fp32 and
# --precision int8 on the same exported scenes, and the difference of each metric (the target: ≤ 0.02).
#
#   bash scripts/bench/int8_eval.sh [CHECKPOINT]     (default runs/pretrain/best; scenes in runs/int8_eval)
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL="${1:-runs/pretrain/best}"
OUT=runs/int8_eval
FLAVA=.build/release/flava
[ -x "$FLAVA" ] || swift build -c release --product flava >/dev/null
[ -d "$MODEL" ] || { echo "error: $MODEL: no such checkpoint (run bash scripts/main.sh first)" >&2; exit 1; }
mkdir -p "$OUT"
export FLAVA_NO_PROGRESS=1
$FLAVA data export --split held_out --count 120 --label class --output "$OUT/zeroshot" >/dev/null
$FLAVA data export --split held_out --start 1000 --count 120 --label shape --output "$OUT/probe_train" >/dev/null
$FLAVA data export --split held_out --start 2000 --count 60 --label shape --output "$OUT/probe_validation" >/dev/null
$FLAVA data export --split held_out --start 3000 --count 120 --label shape --output "$OUT/probe_test" >/dev/null
for p in fp32 int8; do
  $FLAVA eval zero-shot --model "$MODEL" --precision $p --folder "$OUT/zeroshot" --templates plain --summary "$OUT/zeroshot_$p.json" >/dev/null
  $FLAVA eval retrieval --model "$MODEL" --precision $p --manifest "$OUT/zeroshot/captions.jsonl" --summary "$OUT/retrieval_$p.json" >/dev/null
  rm -rf "$OUT/probe_cache_$p"
  $FLAVA eval linear-probe --model "$MODEL" --precision $p --train "$OUT/probe_train" --validation "$OUT/probe_validation" \
      --test "$OUT/probe_test" --cache "$OUT/probe_cache_$p" --summary "$OUT/probe_$p.json" >/dev/null
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
load = lambda n: json.load(open(f"{out}/{n}.json"))
rows = [("zero-shot top-1, 8 held-out colour–shape classes", "zeroshot", "top1_accuracy"),
        ("retrieval image→text R@1", "retrieval", "image_to_text_R@1"),
        ("retrieval image→text R@5", "retrieval", "image_to_text_R@5"),
        ("retrieval text→image R@1", "retrieval", "text_to_image_R@1"),
        ("retrieval text→image R@5", "retrieval", "text_to_image_R@5"),
        ("linear probe test accuracy, 6 shapes", "probe", "test_accuracy")]
print("| held-out metric | fp32 | int8 | int8 − fp32 |\n|---|---|---|---|")
worst = 0
for name, f, key in rows:
    a, b = load(f"{f}_fp32")[key], load(f"{f}_int8")[key]
    worst = max(worst, abs(b - a))
    print(f"| {name} | {a:.3f} | {b:.3f} | {b - a:+.3f} |")
print(f"\nlargest difference: {worst:.3f} (target ≤ 0.02)")
PY
