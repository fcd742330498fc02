#!/usr/bin/env bash
# Full-size FLAVA inference throughput and memory, ours (`flava bench`, float32 and int8) next to the peers a user
# would pick instead, all randomly initialized at FlavaConfig() size and measured the same way (median of N
# forward passes after a warm-up, no gradients, 2 threads, peak RSS of the process and RSS after the passes),
# one process per measurement, alternating in one run:
#   pytorch            transformers' FlavaModel, float32
#   pytorch-int8       the same after torch.ao.quantization.quantize_dynamic (every nn.Linear, fbgemm)
#   onnxruntime-int8   the exported path after onnxruntime.quantization.quantize_dynamic (per-channel int8 weights)
# Paths: image (projected [CLS] of the image encoder), text (77 tokens), multimodal (image + text + multimodal
# encoders on pairs). Prints a Markdown table; the ratios are ours int8 against each peer. With --rounds R every
# measurement is repeated R times (all five alternating each round) and each keeps its best median: on a shared
# machine whose speed comes and goes, that compares each at its best instead of whoever drew the quiet seconds.
#
# --avx2 makes the machine an AVX2-only CPU for every runtime at once, as a stand-in for one (an AMD EPYC Zen 3, say)
# on a CPU with AVX-512: scripts/bench/cpuid_avx2.c, preloaded into every process, traps CPUID (Linux's CPUID
# faulting) and clears the AVX-512, VNNI and AMX bits, so ours, PyTorch (ATen, MKL, oneDNN), fbgemm and ONNX
# Runtime's MLAS each pick the kernels they would pick there; GLIBC_TUNABLES does the same for glibc's own
# string functions. Where the CPU has no CPUID faulting, it falls back to each runtime's switch (FLAVA_INT8_KERNEL,
# FLAVA_FLOAT_KERNEL, ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS, ONEDNN_MAX_CPU_ISA,
# FBGEMM_ENABLE_INSTRUCTIONS), which ONNX Runtime lacks: its column then stays at the CPU's best.
#
#   bash scripts/bench/model_bench.sh [--iterations N] [--rounds R] [--what "image text multimodal"] [--batches "1 8"] [--avx2]
set -euo pipefail
cd "$(dirname "$0")/../.."
iters=5; rounds=1; whats="image text multimodal"; batches="1 8"; avx2=0
while [ $# -gt 0 ]; do
  case "$1" in
    --iterations) iters=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --what) whats=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --avx2) avx2=1; shift ;;
    *) echo "model_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
swift build -c release --product flava >/dev/null
held=""
if [ $avx2 = 1 ]; then
  shim=$(mktemp -d)/cpuid_avx2.so
  trap 'rm -rf "$(dirname "$shim")"' EXIT
  if cc -O2 -shared -fPIC -o "$shim" scripts/bench/cpuid_avx2.c -ldl && LD_PRELOAD="$shim" /bin/true 2>/dev/null; then
    export LD_PRELOAD="$shim"
    export GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL,-AVX512_VNNI,-AVX_VNNI
    held="; CPUID held to AVX2 for every runtime (scripts/bench/cpuid_avx2.c)"
  else
    echo "model_bench: no CPUID faulting here; holding each runtime to AVX2 by its own switch (not ONNX Runtime)" >&2
    export FLAVA_INT8_KERNEL=avx2 FLAVA_FLOAT_KERNEL=avx2
    export ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2
    held="; held to AVX2 by switches: ours, PyTorch, fbgemm (not ONNX Runtime)"
  fi
fi
py="${FLAVA_PEER_VENV:-/opt/venv-peer}/bin/python"
[ -x "$py" ] || { echo "bench: no PyTorch virtual environment (see scripts/bench/run.sh)"; exit 1; }
kernel=$(FLAVA_NO_PROGRESS=1 .build/release/flava bench --precision int8 --what text --batch-size 1 --iterations 1 --tokens 8 2>/dev/null \
         | sed -n 's/.*int8 (\([a-z0-9_]*\)).*/\1/p' | head -1)
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') (family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')), $(nproc) cores; our int8 kernel: $kernel; $iters timed passes, best of $rounds round(s)$held"
echo
echo "| path | batch | ours fp32 | ours int8 | PyTorch fp32 | PyTorch int8 | ORT int8 | int8 ÷ PyTorch fp32 | int8 ÷ best int8 peer | fp32 ÷ PyTorch fp32 | peak / after MiB: ours fp32, ours int8, PyTorch fp32, PyTorch int8, ORT int8 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for what in $whats; do
  for batch in $batches; do
    res=()
    for ((round = 0; round < rounds; round++)); do
      i=0
      for precision in fp32 int8; do
        s=$(mktemp)
        FLAVA_NO_PROGRESS=1 .build/release/flava bench --what $what --batch-size $batch --iterations "$iters" --precision $precision --summary "$s" >/dev/null
        res[$i]="${res[$i]:-} $(python3 -c "import json;d=json.load(open('$s'));print(d['items_per_second'], d['peak_rss_bytes'], d['rss_bytes_after'], sep=',')")"
        rm -f "$s"; i=$((i + 1))
      done
      for rt in pytorch pytorch-int8 onnxruntime-int8; do
        res[$i]="${res[$i]:-} $("$py" scripts/bench/torch_bench.py model --runtime $rt --path $what --batch $batch --tokens 77 --iterations "$iters" 2>/dev/null | tail -1 \
                | python3 -c "import json,sys;d=json.loads(sys.stdin.read());print(d['items_per_second'], d['peak_rss_bytes'], d['rss_bytes_after'], sep=',')")"
        i=$((i + 1))
      done
    done
    python3 - "$what" "$batch" "${res[@]}" <<'PY'
import sys
what, batch, *rows = sys.argv[1:]
# Per runtime (ours fp32, ours int8, pytorch, pytorch-int8, ort-int8): its rounds, each "items/s,peak,after";
# the round with the most items/s.
v = [max((list(map(float, m.split(","))) for m in r.split()), key=lambda x: x[0]) for r in rows]
ips = [x[0] for x in v]
mem = ", ".join(f"{x[1]/2**20:.0f}/{x[2]/2**20:.0f}" for x in v)
print(f"| {what} | {batch} | " + " | ".join(f"{x:.2f}" for x in ips) +
      f" | {ips[1]/ips[2]:.2f}× | {ips[1]/max(ips[3], ips[4]):.2f}× | {ips[0]/ips[2]:.2f}× | {mem} |", flush=True)
PY
  done
done
echo
echo "(items/s: images, texts or pairs per second)"
