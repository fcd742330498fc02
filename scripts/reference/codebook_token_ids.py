#!/usr/bin/env python3
"""Checks that a codebook trained by `flava codebook train` loads in transformers and gives our token ids.

Loads the folder with FlavaImageCodebook.from_pretrained (no missing, unexpected or mis-shaped keys), prepares
the images listed in a tokens file written by `flava codebook encode` with transformers' FlavaImageProcessor
(codebook pixels at the same side: LANCZOS resize, 0.8x + 0.1), and compares get_codebook_indices with our ids.

Usage:
  .build/release/flava codebook encode --codebook runs/codebook --image a.png b.png --output /tmp/tokens.json
  /opt/venv-peer/bin/python scripts/reference/codebook_token_ids.py runs/codebook /tmp/tokens.json
"""
import json
import sys

import torch
from PIL import Image
from transformers import FlavaImageCodebook, FlavaImageProcessor

folder, tokens_path = sys.argv[1], sys.argv[2]
model, info = FlavaImageCodebook.from_pretrained(folder, output_loading_info=True)
model.eval()
problems = {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
print("loading:", problems or "no missing, unexpected or mis-shaped keys")

ours = json.load(open(tokens_path))
side = ours["image_size"]
proc = FlavaImageProcessor(return_codebook_pixels=True, codebook_size={"height": side, "width": side},
                           codebook_crop_size={"height": side, "width": side})
images = [Image.open(e["image"]).convert("RGB") for e in ours["images"]]
pixels = proc(images, return_tensors="pt", return_codebook_pixels=True)["codebook_pixel_values"]
with torch.no_grad():
    logits = model(pixels)                                                   # [N, V, h, w]
theirs = logits.argmax(1)
mine = torch.tensor([e["tokens"] for e in ours["images"]])
same = (theirs == mine).float().mean().item()
print(f"{len(images)} images, {mine.numel()} tokens: {100 * same:.2f}% identical ids")
# A differing id is acceptable only where the two codes' logits tie to float32 rounding (summation order).
ties = True
for n, y, x in (theirs != mine).nonzero().tolist():
    a, b = logits[n, theirs[n, y, x], y, x].item(), logits[n, mine[n, y, x], y, x].item()
    tie = abs(a - b) <= 1e-5 * max(1.0, abs(a))
    ties &= tie
    print(f"  {ours['images'][n]['image']} position ({y}, {x}): transformers {theirs[n, y, x].item()} ({a:.6f}), "
          f"ours {mine[n, y, x].item()} ({b:.6f}){' — a tie' if tie else ''}")
ok = not problems and ties
print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
