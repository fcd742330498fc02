#!/usr/bin/env python3
"""Makes Tests/Fixtures/flava_micro_bin: a micro FLAVA saved by transformers as a FlavaModel (keys without the
`flava.` prefix) in PyTorch's pytorch_model.bin format, with expected outputs, so CI covers the .bin path
and the second key layout with real numbers (run once; the outputs are committed).

Usage: /opt/venv-peer/bin/python scripts/reference/make_micro_fixture.py   (needs torch, transformers, safetensors)
"""
import os
import torch
from safetensors.torch import save_file
from transformers import FlavaConfig, FlavaModel

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "..", "Tests", "Fixtures", "flava_micro_bin")
os.makedirs(out, exist_ok=True)
common = dict(hidden_size=16, num_attention_heads=2, intermediate_size=24, num_hidden_layers=1)
cfg = FlavaConfig(image_config=dict(common, image_size=16, patch_size=8),
                  text_config=dict(common, vocab_size=64, max_position_embeddings=12),
                  multimodal_config=dict(common), projection_dim=8, hidden_size=16)
torch.manual_seed(3)
model = FlavaModel(cfg).eval()
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.randn(p.shape) * 0.2 + (1.0 if p.dim() == 1 and p.shape[0] == 16 else 0.0) * 0)
model.save_pretrained(out)                              # config.json (+ model.safetensors, replaced below)
os.remove(os.path.join(out, "model.safetensors"))
torch.save(model.state_dict(), os.path.join(out, "pytorch_model.bin"))   # what older transformers wrote
ids = torch.tensor([[1, 5, 9, 2, 0], [1, 7, 2, 0, 0]])
mask = (ids != 0).long()
pixels = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
with torch.no_grad():
    o = model(input_ids=ids, attention_mask=mask, pixel_values=pixels)
    img = torch.nn.functional.normalize(model.image_projection(o.image_embeddings[:, 0]), dim=-1)
    txt = torch.nn.functional.normalize(model.text_projection(o.text_embeddings[:, 0]), dim=-1)
save_file({"input_ids": ids, "attention_mask": mask, "pixel_values": pixels, "image_embeddings": o.image_embeddings,
           "text_embeddings": o.text_embeddings, "multimodal_embeddings": o.multimodal_embeddings,
           "image_embeds": img, "text_embeds": txt}, os.path.join(out, "expected.safetensors"))
print(sorted(os.listdir(out)))
