#!/usr/bin/env bash
# Full-size FLAVA forward throughput, ours (`flava bench`) next to PyTorch running Hugging Face's FlavaModel,
# both randomly initialized at FlavaConfig() size, measured the same way (median of N forward passes after a
# warm-up, no gradients, peak RSS of the process), alternating in one run.
#
#   bash scripts/bench/model_bench.sh [--iterations N]
set -euo pipefail
cd "$(dirname "$0")/../.."
iters=5
[ "${1:-}" = "--iterations" ] && iters=$2
py="${FLAVA_PEER_VENV:-/opt/venv-peer}/bin/python"
[ -x "$py" ] || { echo "bench: no PyTorch virtual environment (see scripts/bench/run.sh)"; exit 1; }
swift build -c release --product flava >/dev/null
printf "%-11s %5s %12s %14s %8s %13s %16s\n" what batch "ours items/s" "PyTorch items/s" ratio "ours peak MiB" "PyTorch peak MiB"
for what in image text multimodal; do
  for batch in 1 8; do
    s=$(mktemp)
    FLAVA_NO_PROGRESS=1 .build/release/flava bench --what $what --batch-size $batch --iterations "$iters" --summary "$s" >/dev/null
    ours=$(python3 -c "import json;d=json.load(open('$s'));print(d['items_per_second'], d['peak_rss_bytes'])")
    peer=$("$py" scripts/bench/torch_bench.py model --path $what --batch $batch --tokens 77 --iterations "$iters" | python3 -c "import json,sys;d=json.loads(sys.stdin.read());print(d['items_per_second'], d['peak_rss_bytes'])")
    python3 - "$what" "$batch" $ours $peer <<'PY'
import sys
w, b, oi, orss, pi, prss = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
print(f"{w:<11} {b:>5} {oi:12.2f} {pi:14.2f} {oi/pi:8.2f} {orss/2**20:13.0f} {prss/2**20:16.0f}")
PY
    rm -f "$s"
  done
done
