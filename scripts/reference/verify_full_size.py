#!/usr/bin/env python3
"""Full-size parity check against Hugging Face transformers (not run in CI: it needs torch, transformers and
pillow, ~1.5 GB of checkpoints and a few minutes).

1. Builds a randomly initialized FlavaForPreTraining with FlavaConfig() defaults (241M parameters in FlavaModel,
   ~358M with heads and codebook) and writes it three ways: FlavaForPreTraining layout (model.safetensors),
   FlavaModel layout (no `flava.` prefix) and as a torch.save'd pytorch_model.bin.
2. Runs `flava embed` on each folder for a few images and texts and compares image_embeds / text_embeds with
   transformers' (FlavaProcessor → get_image_features / get_text_features [:, 0] → L2 normalize).
3. Runs `flava convert` (load here, save here) and loads the result with
   FlavaForPreTraining.from_pretrained(..., output_loading_info=True): no missing or unexpected keys, and
   identical weights.

Usage: /opt/venv-peer/bin/python scripts/reference/verify_full_size.py [--work /tmp/flava-full] [--flava .build/release/flava]
"""
import argparse, json, os, shutil, subprocess, sys
import numpy as np
import torch
from PIL import Image
from safetensors.numpy import load_file
from transformers import BertTokenizer, FlavaConfig, FlavaForPreTraining, FlavaImageProcessor, FlavaModel

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", ".."))
ref = os.path.abspath(os.path.join(root, "..", "shared", "reference"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/flava-full")
    ap.add_argument("--flava", default=os.path.join(root, ".build", "release", "flava"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    torch.manual_seed(0)
    model = FlavaForPreTraining(FlavaConfig()).eval()
    n_model = sum(p.numel() for p in model.flava.parameters())
    n_all = sum(p.numel() for p in model.parameters())
    print(f"FlavaModel parameters {n_model:,}; FlavaForPreTraining {n_all:,}")
    vocab = os.path.join(ref, "flava_tiny", "vocab.txt")
    dirs = {k: os.path.join(a.work, k) for k in ["pretraining", "flava_model", "torch_bin"]}
    model.save_pretrained(dirs["pretraining"])
    model.flava.save_pretrained(dirs["flava_model"])
    os.makedirs(dirs["torch_bin"], exist_ok=True)
    shutil.copy(os.path.join(dirs["pretraining"], "config.json"), dirs["torch_bin"])
    torch.save(model.state_dict(), os.path.join(dirs["torch_bin"], "pytorch_model.bin"))
    for d in dirs.values():
        shutil.copy(vocab, d)

    images = [os.path.join(ref, "images", f) for f in ["gradient_320x240.jpg", "shapes_300x300.png", "tall_50x400.jpg"]]
    texts = ["a photo of a cat", "two red circles and a blue square", "Café au lait, s'il vous plaît!"]
    tok = BertTokenizer(vocab)
    proc = FlavaImageProcessor()
    with torch.no_grad():
        px = proc([Image.open(p).convert("RGB") for p in images], return_tensors="pt")["pixel_values"]
        enc = tok(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
        f = model.flava
        img = torch.nn.functional.normalize(f.get_image_features(pixel_values=px).pooler_output[:, 0], dim=-1).numpy()
        txt = torch.nn.functional.normalize(
            f.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).pooler_output[:, 0], dim=-1).numpy()

    ok = True
    for name, d in dirs.items():
        out = os.path.join(a.work, f"embeds_{name}.safetensors")
        cmd = [a.flava, "embed", "--model", d, "--output", out] + sum([["--image", p] for p in images], []) + sum([["--text", t] for t in texts], [])
        subprocess.run(cmd, check=True)
        e = load_file(out)
        di, dt = np.abs(e["image_embeds"] - img).max(), np.abs(e["text_embeds"] - txt).max()
        print(f"{name:12s} flava embed vs transformers: image max|diff| {di:.2e}, text max|diff| {dt:.2e}")
        ok &= di < 1e-4 and dt < 1e-4

    conv = os.path.join(a.work, "converted")
    subprocess.run([a.flava, "convert", "--model", dirs["torch_bin"], "--output", conv], check=True)
    back, info = FlavaForPreTraining.from_pretrained(conv, output_loading_info=True)
    print("transformers loading our checkpoint:", {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys")})
    ok &= not info["missing_keys"] and not info["unexpected_keys"] and not info.get("mismatched_keys")
    sd, sd2 = model.state_dict(), back.state_dict()
    worst = max((sd[k] - sd2[k]).abs().max().item() for k in sd)
    print(f"weights after the round trip: max |diff| {worst}")
    ok &= worst == 0
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
