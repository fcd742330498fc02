#!/usr/bin/env python3
"""Makes Tests/Fixtures/decode/: image files in the formats PIL decodes (progressive, grayscale and CMYK JPEG;
16-bit, palette, palette with transparency, gray+alpha and 1-bit PNG) with what PIL's
Image.open(...).convert("RGB") gives for each (decoded.safetensors, uint8 as int64), and
Tests/Fixtures/interpolate.safetensors: a position table resized by torch's bicubic F.interpolate, as HF's
interpolate_pos_encoding does. Run once; the outputs are committed.

Usage: /opt/venv-peer/bin/python scripts/reference/make_io_fixtures.py   (needs numpy, pillow, torch, safetensors)
"""
import os
import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "..", "Tests", "Fixtures")
dec = os.path.join(out, "decode")
os.makedirs(dec, exist_ok=True)
rng = np.random.default_rng(11)
y, x = np.mgrid[0:40, 0:56]
rgb = np.stack([x * 4, y * 6, (x + y) * 2], -1).astype(np.uint8)
rgb = np.clip(rgb.astype(int) + rng.integers(-20, 20, rgb.shape), 0, 255).astype(np.uint8)
im = Image.fromarray(rgb)
files = {}
im.save(os.path.join(dec, "progressive.jpg"), quality=90, progressive=True); files["progressive.jpg"] = None
im.convert("L").save(os.path.join(dec, "gray.jpg"), quality=90); files["gray.jpg"] = None
im.convert("CMYK").save(os.path.join(dec, "cmyk.jpg"), quality=90); files["cmyk.jpg"] = None
# 16-bit: PIL writes 16-bit grayscale ("I;16"); its convert("RGB") clips values to 255 rather than scaling.
Image.fromarray((x * 700 + y * 300).astype(np.uint16)).save(os.path.join(dec, "gray16.png")); files["gray16.png"] = None
im.quantize(colors=16).save(os.path.join(dec, "palette.png")); files["palette.png"] = None
p = im.quantize(colors=8); p.info["transparency"] = 0; p.save(os.path.join(dec, "palette_trns.png"), transparency=0); files["palette_trns.png"] = None
Image.fromarray(np.stack([rgb[..., 0], rgb[..., 1]], -1), "LA").save(os.path.join(dec, "gray_alpha.png")); files["gray_alpha.png"] = None
im.convert("1").save(os.path.join(dec, "bilevel.png")); files["bilevel.png"] = None
tensors = {}
for f in files:
    tensors[f.replace(".", "_")] = torch.from_numpy(np.array(Image.open(os.path.join(dec, f)).convert("RGB")).astype(np.int64))
save_file(tensors, os.path.join(dec, "decoded.safetensors"))

torch.manual_seed(0)
table = torch.randn(1, 1 + 16, 6)
patch = table[:, 1:].reshape(1, 4, 4, 6).permute(0, 3, 1, 2)
res = {"table": table}
for h, w in [(3, 3), (6, 5), (2, 7)]:
    r = torch.nn.functional.interpolate(patch, size=(h, w), mode="bicubic", align_corners=False)
    res[f"resized_{h}x{w}"] = torch.cat([table[:, :1], r.permute(0, 2, 3, 1).reshape(1, h * w, 6)], 1).contiguous()
save_file(res, os.path.join(out, "interpolate.safetensors"))
print(sorted(files), sorted(res))
