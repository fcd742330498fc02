#!/usr/bin/env python3
"""Loads a checkpoint written by `flava pretrain` with transformers and checks it is complete and usable:
FlavaForPreTraining.from_pretrained with no missing, unexpected or mis-shaped keys, identical weights, and a
forward pass on one synthetic-world style caption.

Usage: /opt/venv-peer/bin/python scripts/reference/load_pretrain_checkpoint.py runs/pretrain/best
"""
import sys
import torch
from safetensors.torch import load_file
from transformers import BertTokenizer, FlavaForPreTraining

path = sys.argv[1]
model, info = FlavaForPreTraining.from_pretrained(path, output_loading_info=True)
print({k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys")})
ours = load_file(path + "/model.safetensors")
sd = model.state_dict()
worst = max((sd[k] - v).abs().max().item() for k, v in ours.items())
print("weights: max |diff|", worst)
tok = BertTokenizer(path + "/vocab.txt")
enc = tok(["a small red circle to the left of a blue square"], return_tensors="pt")
size = model.config.image_config.image_size
with torch.no_grad():
    out = model.flava(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=torch.zeros(1, 3, size, size))
print("multimodal_embeddings", tuple(out.multimodal_embeddings.shape))
ok = not info["missing_keys"] and not info["unexpected_keys"] and not info.get("mismatched_keys") and worst == 0
print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
