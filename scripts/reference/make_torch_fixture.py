#!/usr/bin/env python3
"""Makes Tests/Fixtures/torch_state_dict.bin and its safetensors twin (run once; the outputs are committed).

The .bin is what `torch.save(module.state_dict())` writes: an OrderedDict with `_metadata`, Parameters, a
non-contiguous (transposed) tensor, tensors sharing one storage, a 0-dim scalar and half, bfloat16, float64
and int64 tensors. The twin holds the same values as float32 (integers as int64) for comparison.

Usage: python3 scripts/reference/make_torch_fixture.py   (needs torch and safetensors)
"""
import os
from collections import OrderedDict
import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "..", "Tests", "Fixtures")
g = torch.Generator().manual_seed(7)
lin = torch.nn.Linear(5, 3)
with torch.no_grad():
    lin.weight.copy_(torch.randn(3, 5, generator=g)); lin.bias.copy_(torch.randn(3, generator=g))
sd = lin.state_dict()                      # OrderedDict with _metadata, tensors from Parameters
base = torch.randn(4, 6, generator=g)
sd["transposed"] = base.t()                # non-contiguous view (stride (1, 6))
sd["row_view"] = base[1]                   # shares base's storage with an offset
sd["scalar"] = torch.tensor(2.5)
sd["half"] = torch.randn(2, 3, generator=g).half()
sd["bfloat"] = torch.randn(5, generator=g).bfloat16()
sd["double"] = torch.randn(2, 2, generator=g).double()
sd["ids"] = torch.tensor([[1, -2, 3], [400000, 5, 6]], dtype=torch.int64)
torch.save(sd, os.path.join(out, "torch_state_dict.bin"))
twin = OrderedDict((k, (v.float() if v.is_floating_point() else v).contiguous().clone()) for k, v in sd.items())
save_file(twin, os.path.join(out, "torch_state_dict.safetensors"))
print("wrote", sorted(twin))

# A malicious checkpoint: its pickle would call os.system if unpickled by Python. Our loader must refuse it.
import pickle, zipfile, io


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


with zipfile.ZipFile(os.path.join(out, "torch_malicious.bin"), "w", compression=zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", pickle.dumps({"weight": Evil()}, protocol=2))
    z.writestr("archive/version", "3\n")

# Checksums of the golden tiny checkpoint, computed independently with numpy, for the reader test.
import json
from safetensors.numpy import load_file
ref = os.path.join(here, "..", "..", "..", "shared", "reference", "flava_tiny", "model.safetensors")
if os.path.exists(ref):
    arrs = load_file(ref)
    json.dump({k: {"shape": list(v.shape), "dtype": str(v.dtype), "sum": float(v.astype("float64").sum()),
                   "first": [float(x) for x in v.reshape(-1)[:3]]} for k, v in sorted(arrs.items())},
              open(os.path.join(out, "flava_tiny_checksums.json"), "w"), indent=0)
