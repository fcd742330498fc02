#!/usr/bin/env bash
# The paper's initialization ablation (Table C.1: FLAVA without unimodal init, with MIM image + MLM text
# encoders, with DINO image + MLM text encoders) in miniature on the synthetic world: the same joint
# pretraining (the main job's settings, one shared vocabulary and codebook) from
#   (a) random init
#   (b) the image encoder of a MIM-only run and the text encoder of an MLM-only run
#   (c) the image encoder of a DINO run (its teacher) and the same MLM text encoder
# then scripts/eval.sh on each best checkpoint (held-out zero-shot, retrieval, linear probe, VQA-style fine-tune),
# and one Markdown table with the time each run took.
#
#   bash scripts/ablation.sh [OUT]   (default runs/ablation; JOINT_STEPS=1200, STAGE_STEPS=300 in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/ablation}"
JOINT=${JOINT_STEPS:-1200}
STAGE=${STAGE_STEPS:-300}
FLAVA=.build/release/flava
[ -x "$FLAVA" ] || bash scripts/setup.sh
mkdir -p "$OUT"
: > "$OUT/times.tsv"
timed() {  # NAME COMMAND…: runs it with its output in OUT/NAME.log, appends NAME and its seconds to times.tsv
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1 || { echo "ablation: $name failed (see $OUT/$name.log)"; tail -3 "$OUT/$name.log"; exit 1; }
  python3 -c "import sys; print(f'$name\t{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$t0" "$(date +%s.%N)" >> "$OUT/times.tsv"
  echo "ablation: $name done"
}
# (a) also makes the vocabulary and the codebook every other run shares.
timed random $FLAVA pretrain --output "$OUT/random" --steps "$JOINT"
VOCAB="$OUT/random/vocab.txt"; CODEBOOK="$OUT/random/codebook"
# The unimodal stages.
timed mlm $FLAVA pretrain --recipe text-stage --steps "$STAGE" --output "$OUT/mlm" --vocab "$VOCAB"
timed mim $FLAVA pretrain --objectives mim --probabilities 0,1,0 --steps "$STAGE" --warmup $((STAGE / 10)) \
    --eval-every "$STAGE" --checkpoint-every "$STAGE" --output "$OUT/mim" --vocab "$VOCAB" --codebook "$CODEBOOK"
timed dino $FLAVA pretrain --objectives dino --steps "$STAGE" --output "$OUT/dino" --vocab "$VOCAB"
# (b) and (c): the same joint run from the stages' encoders.
timed mim_mlm $FLAVA pretrain --output "$OUT/mim_mlm" --steps "$JOINT" --vocab "$VOCAB" --codebook "$CODEBOOK" \
    --init-text "$OUT/mlm/checkpoint-$STAGE" --init-image "$OUT/mim/checkpoint-$STAGE"
timed dino_mlm $FLAVA pretrain --output "$OUT/dino_mlm" --steps "$JOINT" --vocab "$VOCAB" --codebook "$CODEBOOK" \
    --init-text "$OUT/mlm/checkpoint-$STAGE" --init-image "$OUT/dino/checkpoint-$STAGE"
for run in random mim_mlm dino_mlm; do
  timed "eval_$run" bash scripts/eval.sh "$OUT/$run/best" "$OUT/eval_$run"
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
times = dict(l.split("\t") for l in open(f"{out}/times.tsv").read().split("\n") if l)
def m(s):
    s = int(s); return f"{s // 60} min {s % 60:02d} s"
runs = [("random", "(a) random init"), ("mim_mlm", "(b) MIM image + MLM text"), ("dino_mlm", "(c) DINO image + MLM text")]
ev = {r: json.load(open(f"{out}/eval_{r}/summary.json")) for r, _ in runs}
metrics = list(ev["random"].keys())
print("| held-out evaluation | " + " | ".join(n for _, n in runs) + " |")
print("|---|" + "---|" * len(runs))
for k in metrics:
    print(f"| {k} | " + " | ".join(f"{ev[r][k]:.3f}" for r, _ in runs) + " |")
stage = {"random": "–", "mim_mlm": f"MIM {m(times['mim'])} + MLM {m(times['mlm'])}", "dino_mlm": f"DINO {m(times['dino'])} + MLM {m(times['mlm'])}"}
print("| unimodal stages | " + " | ".join(stage[r] for r, _ in runs) + " |")
print("| joint pretraining | " + " | ".join(m(times[r]) for r, _ in runs) + " |")
PY
