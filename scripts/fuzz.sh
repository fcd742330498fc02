#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted input: builds flava-fuzz with libFuzzer and
# AddressSanitizer (in .build-fuzz), runs each harness for N seconds on a copy of its committed seed corpus
# (Tests/Fuzz/corpus/HARNESS plus Tests/Fuzz/regressions/HARNESS), and prints executions, coverage and
# findings. A crash, a sanitizer report, an input running over 10 s or a single allocation over 2 GB is a
# finding: its input is kept in .build-fuzz/findings/HARNESS/ and the script exits non-zero.
#
#   bash scripts/fuzz.sh [--seconds N] [--parallel P] [--seed S] [--keep-corpus DIR] [HARNESS…]
#
# --seed S fixes libFuzzer's random seed (CI uses one, so a run explores the same mutations each time);
# --keep-corpus DIR keeps the grown corpora (DIR/HARNESS) for a later run or a merge into the seeds.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60; parallel=2; keep=""; seed=0; harnesses=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --keep-corpus) keep="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
    *) harnesses+=("$1"); shift ;;
  esac
done

bash scripts/setup.sh --packages-only
echo "fuzz: building flava-fuzz with libFuzzer + AddressSanitizer (.build-fuzz)"
swift build -c release --scratch-path .build-fuzz --product flava-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xcc -fsanitize=fuzzer-no-link,address -Xswiftc -use-ld=lld 2>&1 \
  | grep -E "error|warning: unre|Build complete" || true
bin=.build-fuzz/release/flava-fuzz
[ -x "$bin" ] || { echo "fuzz: build failed" >&2; exit 1; }
[ ${#harnesses[@]} -gt 0 ] || mapfile -t harnesses < <("$bin" list | awk '{print $1}')

work=$(mktemp -d /tmp/flava-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
findings=.build-fuzz/findings
mkdir -p "$findings"
# Leak checking is off: the Swift runtime's metadata caches read as leaks to LeakSanitizer.
# Allocation stacks are not recorded (malloc_context_size=0): Swift allocates per string and array, and
# recording each stack costs most of an execution; a report still shows where the bad access happened.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:handle_abort=1:malloc_context_size=0"

fuzz_one() {
  local h="$1" dir="$work/$1"
  mkdir -p "$dir/corpus" "$findings/$h"
  for src in Tests/Fuzz/corpus/$h Tests/Fuzz/regressions/$h; do
    [ -d "$src" ] && cp "$src"/* "$dir/corpus/" 2>/dev/null || true
  done
  set +e
  # timeout: libFuzzer's own limit plus a margin, so a wedged process cannot hold the script.
  # Texts are tokenized three times per input: shorter inputs keep that harness's rate up.
  local max_len=65536
  [ "$h" = tokenizer ] && max_len=8192
  timeout --kill-after=30 $((seconds + 120)) "$bin" run "$h" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=4096 -malloc_limit_mb=2048 -max_len=$max_len -seed="$seed" -print_final_stats=1 \
    -artifact_prefix="$findings/$h/" "$dir/corpus" > "$dir/log" 2>&1
  echo $? > "$dir/rc"
  set -e
  if [ -n "$keep" ]; then mkdir -p "$keep/$h"; cp "$dir/corpus"/* "$keep/$h/" 2>/dev/null || true; fi
}

running=0
for h in "${harnesses[@]}"; do
  fuzz_one "$h" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

status=0
printf '\n%-14s %12s %9s %8s %8s  %s\n' harness executions "exec/s" edges corpus result
for h in "${harnesses[@]}"; do
  d="$work/$h"; rc=$(cat "$d/rc")
  execs=$(grep -oE 'stat::number_of_executed_units: +[0-9]+' "$d/log" | awk '{print $2}' | tail -1)
  rate=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$d/log" | awk '{print $2}' | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$d/log" | tail -1 | awk '{print $2}')
  corp=$(grep -oE 'corp: [0-9]+' "$d/log" | tail -1 | awk '{print $2}')
  if [ "$rc" = 0 ]; then result="ok"; else
    status=1
    artifact=$(grep -oE "Test unit written to [^ ]+" "$d/log" | tail -1 | sed 's/Test unit written to //')
    # A Swift trap comes first in the log (the backtracer that follows it can trip ASan itself).
    kind=$(grep -m1 -oE "Swift runtime failure: [a-z -]+|Fatal error: .*|invariant broken.*|ERROR: (libFuzzer|AddressSanitizer): [a-z-]+" "$d/log" | head -c 120)
    result="FINDING (rc $rc) ${kind:-see log} ${artifact:-}"
    cp "$d/log" "$findings/$h/log.txt"
  fi
  printf '%-14s %12s %9s %8s %8s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${corp:-?}" "$result"
done
if [ "$status" != 0 ]; then
  echo "fuzz: findings above; inputs and logs in $findings/. Replay one with: .build/release/flava-fuzz replay HARNESS FILE" >&2
fi
exit $status
