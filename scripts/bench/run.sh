#!/usr/bin/env bash
# Runs the tensor-core benchmarks of BENCHMARKS.md side by side with PyTorch, in one run, and prints ratios.
#
#   bash scripts/bench/run.sh [--iterations N]
#
# PyTorch comes from a virtual environment outside the repository: $FLAVA_PEER_VENV (default /opt/venv-peer),
# created with `python3 -m venv /opt/venv-peer && /opt/venv-peer/bin/pip install torch transformers safetensors`.
set -euo pipefail
cd "$(dirname "$0")/../.."
iters=10
[ "${1:-}" = "--iterations" ] && iters=$2
venv=${FLAVA_PEER_VENV:-/opt/venv-peer}
py="$venv/bin/python"
[ -x "$py" ] || { echo "bench: no PyTorch virtual environment at $venv (see the header of this script)"; exit 1; }
swift build -c release --product flava-bench >/dev/null
bench=.build/release/flava-bench
out=$(mktemp)
{
  $bench gemm --json --iterations $((iters * 2)) | grep '^{'
  "$py" scripts/bench/torch_bench.py gemm --iterations $((iters * 2))
  for mode in forward backward; do
    $bench layer --mode $mode --json --iterations "$iters" | grep '^{'
    "$py" scripts/bench/torch_bench.py layer --mode $mode --iterations "$iters"
  done
} > "$out"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("GEMM (float32, 2 threads), m = batch 8 × 197 tokens")
print("  ours: the training product (OpenBLAS through LinearKernel); packed: the inference product (PackedLinear) at")
print("  the float kernel level in use on this CPU")
print(f"{'in×out':>10} {'ours GF/s':>10} {'OpenBLAS GF/s':>14} {'ours/OpenBLAS':>14} {'packed GF/s':>12} {'PyTorch GF/s':>13} {'ours/PyTorch':>13} {'packed/PyTorch':>15}")
ours = [r for r in rows if r["bench"] == "gemm" and "peer" not in r]
peer = {(r["in"], r["out"]): r for r in rows if r["bench"] == "gemm" and r.get("peer")}
for r in ours:
    p = peer.get((r["in"], r["out"]), {}).get("gflops", float("nan"))
    packed = r.get(f"packed_{r['float_level']}_gflops", float("nan"))
    print(f"{str(r['in'])+'×'+str(r['out']):>10} {r['ours_gflops']:10.1f} {r['openblas_gflops']:14.1f} {r['ratio']:14.3f} {packed:12.1f} {p:13.1f} {r['ours_gflops']/p:13.3f} {packed/p:15.3f}")
print()
print("FlavaLayer, hidden 768, 12 heads, MLP 3072, batch 8 × 197 tokens")
print(f"{'mode':>18} {'ours ms':>9} {'PyTorch ms':>11} {'speed ratio (PyTorch ms / ours ms)':>36} {'ours peak MiB':>14} {'PyTorch peak MiB':>17}")
for mode in ["forward", "backward"]:
    o = next(r for r in rows if r["bench"] == "layer" and r["mode"] == mode and "peer" not in r)
    p = next(r for r in rows if r["bench"] == "layer" and r["mode"] == mode and r.get("peer"))
    name = "forward (no grad)" if mode == "forward" else "forward+backward"
    print(f"{name:>18} {o['ms']:9.1f} {p['ms']:11.1f} {p['ms']/o['ms']:36.2f} {o['peak_rss_bytes']/2**20:14.0f} {p['peak_rss_bytes']/2**20:17.0f}")
PY
rm -f "$out"
