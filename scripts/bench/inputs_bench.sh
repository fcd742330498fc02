#!/usr/bin/env bash
# Input-pipeline throughput next to the Python stack, same data, same run:
#  - WordPiece: our BertTokenizer vs Hugging Face `tokenizers` (BertTokenizerFast, Rust), 20,000 sentences,
#    [CLS] … [SEP] padded/truncated to 77, single-threaded and with 2 threads;
#  - images: decode + FLAVA preprocessing (224 BICUBIC + CLIP normalize, and 112 LANCZOS codebook view) of
#    40 JPEGs (500×375) and PNGs, ours vs PIL + transformers' FlavaImageProcessor (PIL path).
#   bash scripts/bench/inputs_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${FLAVA_PEER_VENV:-/opt/venv-peer}/bin/python"
work=${TMPDIR:-/tmp}/flava-inputs-bench
mkdir -p "$work/images"
vocab=../shared/reference/flava_tiny/vocab.txt
swift build -c release --product flava-bench >/dev/null
"$py" scripts/bench/inputs_peer.py --make "$work" --vocab "$vocab" > /dev/null
B=.build/release/flava-bench
{
  $B tokenizer --vocab "$vocab" --corpus "$work/corpus.txt" --threads 1 --json | grep '^{'
  $B tokenizer --vocab "$vocab" --corpus "$work/corpus.txt" --threads 2 --json | grep '^{'
  $B images --dir "$work/images" --threads 1 --json | grep '^{'
  $B images --dir "$work/images" --threads 2 --json | grep '^{'
  "$py" scripts/bench/inputs_peer.py --measure "$work" --vocab "$vocab"
} > "$work/results.jsonl"
python3 - "$work/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def get(bench, peer, threads):
    for r in rows:
        if r["bench"] == bench and bool(r.get("peer")) == peer and r.get("threads", 1) == threads: return r
tk = "sentences_per_second"; im = "images_per_second"
print(f"{'measure':<34} {'ours':>10} {'Python stack':>13} {'ratio':>7}")
for label, bench, key, th in [("tokenizer sentences/s, 1 thread", "tokenizer", tk, 1), ("tokenizer sentences/s, 2 threads", "tokenizer", tk, 2),
                              ("images/s decode+preprocess, 1 thread", "images", im, 1)]:
    o, p = get(bench, False, th), get(bench, True, th)
    print(f"{label:<34} {o[key]:10.0f} {p[key]:13.0f} {o[key]/p[key]:7.2f}")
o = get("images", False, 2)
print(f"{'images/s, ours with 2 threads':<34} {o[im]:10.1f}")
PY
