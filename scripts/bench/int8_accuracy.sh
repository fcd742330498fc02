#!/usr/bin/env bash
# The accuracy check of int8 inference at full size, before any speed claim: cosine between the float32 and int8
# image and text embeddings of a full-size FLAVA (FlavaConfig(), randomly initialized: no trained full-size
# weights can be downloaded here) on real photos and graphics and on real sentences, on every int8 kernel path
# this CPU has. Images: scikit-image's bundled photographs, GNOME's wallpapers, Adwaita's 512-pixel icons and
# the plots in Debian's documentation (all converted to RGB PNG by Pillow, in a temporary folder: nothing is
# committed); sentences: scripts/bench/int8_sentences.txt; tokenizer: the BERT vocabulary of the reference's
# tiny checkpoint (30,522 tokens, FLAVA's).
#
#   bash scripts/bench/int8_accuracy.sh [--model DIR]   (DIR: a model folder of yours instead of the random one;
#                                               needs the peer venv with Pillow and scikit-image:
#                                               pip install pillow scikit-image; apt-get install gnome-backgrounds)
set -euo pipefail
cd "$(dirname "$0")/../.."
model=(); vocab=(--vocab ../shared/reference/flava_tiny/vocab.txt)
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=(--model "$2"); vocab=(); shift 2 ;;
    *) echo "int8_accuracy: unknown option $1 (use --model DIR)" >&2; exit 2 ;;
  esac
done
py="${FLAVA_PEER_VENV:-/opt/venv-peer}/bin/python"
[ -x "$py" ] || { echo "int8_accuracy: no Python virtual environment with Pillow at $py" >&2; exit 1; }
swift build -c release --product flava-bench >/dev/null
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/photos" "$dir/graphics"
"$py" - "$dir" <<'PY'
import glob, os, sys
from PIL import Image
import skimage
out = sys.argv[1]
photos = sorted(glob.glob(os.path.join(os.path.dirname(skimage.__file__), "data", "*.png")) +
                glob.glob(os.path.join(os.path.dirname(skimage.__file__), "data", "*.jpg")))
photos = [p for p in photos if not any(s in os.path.basename(p) for s in ("chessboard", "logo", "text", "page", "phantom", "color"))]
graphics = sorted(glob.glob("/usr/share/backgrounds/gnome/*.webp")) + sorted(glob.glob("/usr/share/icons/Adwaita/512x512/*/*.png"))[:12] \
    + sorted(p for p in glob.glob("/usr/share/doc/**/*.png", recursive=True) if os.path.getsize(p) > 20000)[:8] \
    + [p for p in glob.glob(os.path.join(os.path.dirname(skimage.__file__), "data", "*.png"))
       if any(s in os.path.basename(p) for s in ("chessboard_RGB", "logo", "text", "page", "color"))]
for kind, files in (("photos", photos), ("graphics", graphics)):
    for i, f in enumerate(files):
        try:
            im = Image.open(f)
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA"); bg = Image.new("RGBA", im.size, (255, 255, 255, 255)); im = Image.alpha_composite(bg, im)
            im.convert("RGB").save(os.path.join(out, kind, f"{i:02d}_{os.path.splitext(os.path.basename(f))[0]}.png"))
        except Exception as e:
            print(f"skipped {f}: {e}", file=sys.stderr)
PY
echo "images: $(ls "$dir/photos" | wc -l) photos, $(ls "$dir/graphics" | wc -l) graphics; sentences: $(grep -c . scripts/bench/int8_sentences.txt)"
# The portable path computes the same int32 sums as AMX and VNNI (tests/FlavaTensorTests/Int8GEMMTests.swift) and
# the same epilogue; at full size it is too slow to be worth running here. AVX2 quantizes activations and weights to
# 7 bits (FLAVA_INT8_KERNEL=avx2 packs them so at load), so its cosines are its own.
paths=""
grep -qw amx_int8 /proc/cpuinfo && paths="amx"
grep -qw avx512_vnni /proc/cpuinfo && paths="$paths avx512_vnni"
grep -qw avx2 /proc/cpuinfo && paths="$paths avx2"
for path in ${paths:-portable}; do
  for kind in photos graphics; do
    echo "== $path, $kind"
    FLAVA_INT8_KERNEL=$path .build/release/flava-bench int8-accuracy "${model[@]}" "${vocab[@]}" \
      --images-from "$dir/$kind" --texts-from scripts/bench/int8_sentences.txt
  done
done
