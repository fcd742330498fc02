#!/usr/bin/env bash
# flava serve under load, side by side (BENCHMARKS.md "flava serve"): POST /v1/embed with one image or one short
# text per request from 1, 4 and 16 closed-loop clients on loopback (flava-bench serve-load), against
#   direct   the same work called sequentially in one process, no HTTP, no batching (flava-bench serve-direct)
#   python   scripts/bench/serve_peer.py: Flask + transformers' FlavaModel on the same folder, one lock
# all on one full-size FLAVA (FlavaConfig() defaults, random weights, the BERT vocabulary), one after the other
# in one run, each server alone on the machine. Then --soak S: S seconds of mixed valid and invalid requests
# from 6 clients (flava-bench serve-soak) with the server's resident memory after warm-up and at the end.
#
#   bash scripts/bench/serve_bench.sh [--requests N] [--soak SECONDS] [--no-load] [--model DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=32; soak=0; model=""; load=1
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) requests=$2; shift 2 ;;
    --soak) soak=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --no-load) load=0; shift ;;
    *) echo "serve_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
py="${FLAVA_PEER_VENV:-/opt/venv-peer}/bin/python"
[ -x "$py" ] || { echo "serve_bench: no PyTorch virtual environment (see scripts/bench/run.sh)"; exit 1; }
"$py" -c "import flask" 2>/dev/null || { echo "serve_bench: the virtual environment needs flask (pip install flask)"; exit 1; }
swift build -c release --product flava >/dev/null
swift build -c release --product flava-bench >/dev/null
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
if [ -z "$model" ]; then
  model="$work/flava-full"
  "$py" - "$model" <<'PY'
import sys, shutil, torch
from transformers import FlavaConfig, FlavaForPreTraining
torch.manual_seed(0)
FlavaForPreTraining(FlavaConfig()).save_pretrained(sys.argv[1])
shutil.copy("../shared/reference/flava_tiny/vocab.txt", sys.argv[1] + "/vocab.txt")
PY
fi
image=../shared/reference/images/gradient_320x240.jpg
bench=.build/release/flava-bench
wait_port() {  # $1 = log file; prints the port once the server listens and /health answers 200 (model loaded)
  for _ in $(seq 1 1200); do
    p=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$1" | head -1)
    if [ -n "$p" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/health")" = 200 ]; then echo "$p"; return 0; fi
    sleep 0.5
  done
  echo "serve_bench: the server did not become ready (log: $(tail -2 "$1"))" >&2; exit 1
}
if [ "$load" = 1 ]; then
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $requests requests per level; model: FlavaConfig() (full size)"
out="$work/rows.jsonl"
for what in image text; do
  $bench serve-direct --model "$model" --what $what --image $image --requests "$requests" --json | grep '^{' >> "$out"
done
.build/release/flava serve --model "$model" --port 0 > "$work/serve.log" 2>&1 &
server=$!
port=$(wait_port "$work/serve.log")
for what in image text; do
  $bench serve-load --port "$port" --what $what --image $image --requests "$requests" --label "flava serve" --json | grep '^{' >> "$out"
done
kill "$server"; wait "$server" 2>/dev/null || true; server=""
# Flask does not report a port it picked for 0: ask the OS for a free one.
pport=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
"$py" scripts/bench/serve_peer.py "$model" "$pport" > "$work/peer.log" 2>&1 &
server=$!
wait_port "$work/peer.log" >/dev/null
for what in image text; do
  $bench serve-load --port "$pport" --what $what --image $image --requests "$requests" --label "python" --json | grep '^{' >> "$out"
done
kill "$server"; wait "$server" 2>/dev/null || true; server=""
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
direct = {r["what"]: r for r in rows if r.get("bench") == "serve_direct"}
load = [r for r in rows if r.get("bench") == "serve_load"]
print()
print("| what | clients | flava serve req/s | p50 / p99 ms | Python (Flask + transformers) req/s | p50 / p99 ms | serve ÷ Python | serve ÷ direct (sequential, in process) | failures |")
print("|---|---|---|---|---|---|---|---|---|")
for what in ["image", "text"]:
    d = direct[what]["requests_per_second"]
    for c in sorted({r["concurrency"] for r in load if r["what"] == what}):
        s = next(r for r in load if r["what"] == what and r["concurrency"] == c and r["server"] == "flava serve")
        p = next(r for r in load if r["what"] == what and r["concurrency"] == c and r["server"] == "python")
        print(f"| {what} | {c} | {s['requests_per_second']:.2f} | {s['p50_ms']:.0f} / {s['p99_ms']:.0f} | {p['requests_per_second']:.2f} | "
              f"{p['p50_ms']:.0f} / {p['p99_ms']:.0f} | {s['requests_per_second'] / p['requests_per_second']:.2f} | "
              f"{s['requests_per_second'] / d:.2f} | {s['failures']} / {p['failures']} |")
print(f"\ndirect (sequential, in process): image {direct['image']['requests_per_second']:.2f}/s, text {direct['text']['requests_per_second']:.2f}/s")
PY
fi
if [ "$soak" != "0" ]; then
  .build/release/flava serve --model "$model" --port 0 > "$work/soak.log" 2>&1 &
  server=$!
  port=$(wait_port "$work/soak.log")
  echo
  $bench serve-soak --port "$port" --pid "$server" --image $image --duration "$soak" --clients 6
  kill -TERM "$server"; wait "$server"; rc=$?; server=""
  echo "server exit status after SIGTERM: $rc"
fi
