#!/usr/bin/env python3
"""PyTorch side of BENCHMARKS.md, measured exactly as flava-bench measures ours (median of timed repetitions
after one warm-up, peak RSS of the process). Prints one JSON object per measurement.

  torch_bench.py gemm  [--m 1576] [--shapes 768x768,768x3072,3072x768] [--iterations 20]
  torch_bench.py layer --mode forward|backward [--batch 8] [--tokens 197] [--iterations 10]
  torch_bench.py model --path image|text|multimodal [--batch 8] [--tokens 77] [--iterations 5]   (FlavaModel, FlavaConfig())
                       [--runtime pytorch|pytorch-int8|onnxruntime|onnxruntime-int8]

The layer is Hugging Face's FlavaLayer (transformers.models.flava.modeling_flava) at FLAVA's full width.
"""
import argparse, json, resource, time
import torch


def timed(fn, iterations, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iterations):
        t0 = time.time(); fn(); ts.append(time.time() - t0)
    return sorted(ts)[len(ts) // 2]


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pretraining_inputs(cfg, b, L):
    """flava-bench's synthetic image-text pretraining batch: random ids with one MLM label each, random pixels and
    codebook pixels, a third of the patches masked, sample 0 the ITM negative (keyword arguments of
    FlavaForPreTraining)."""
    size, patch = cfg.image_config.image_size, cfg.image_config.patch_size
    n = (size // patch) ** 2
    cb = int(round(n ** 0.5)) * 8
    ids = torch.randint(1000, 21000, (b, L)) % cfg.text_config.vocab_size
    mlm = torch.full((b, L), -100); mlm[:, 2] = ids[:, 2]
    return dict(input_ids=ids, input_ids_masked=ids, attention_mask=torch.ones(b, L, dtype=torch.long),
                pixel_values=torch.randn(b, 3, size, size), codebook_pixel_values=torch.rand(b, 3, cb, cb) * 0.8 + 0.1,
                bool_masked_pos=(torch.arange(b * n).reshape(b, n) % 3 == 0).long(), mlm_labels=mlm,
                itm_labels=torch.tensor([0] + [1] * (b - 1)))


class _Path(torch.nn.Module):
    """One inference path of FlavaModel as a module of tensors only (what torch.onnx.export traces): image and text
    return their projected, normalized [CLS] embeddings as flava bench computes them; multimodal the three
    encoders' hidden states."""
    def __init__(self, model, path):
        super().__init__(); self.model, self.path = model, path

    def forward(self, px, ids, mask):
        m = self.model
        if self.path == "image":
            return torch.nn.functional.normalize(m.image_projection(m.image_model(pixel_values=px).last_hidden_state[:, 0]), dim=-1)
        if self.path == "text":
            return torch.nn.functional.normalize(m.text_projection(m.text_model(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]), dim=-1)
        out = m(input_ids=ids, attention_mask=mask, pixel_values=px)
        return out.multimodal_embeddings


def model_step(model, path, px, ids, mask, runtime, threads):
    """A no-grad forward of one path under one runtime: PyTorch float32 ("pytorch"), PyTorch's dynamic int8
    quantization of every nn.Linear ("pytorch-int8": torch.ao.quantization.quantize_dynamic, fbgemm), or ONNX
    Runtime on the exported path, float32 ("onnxruntime") or after onnxruntime.quantization.quantize_dynamic
    ("onnxruntime-int8": int8 weights per channel, uint8 activations per tensor, MatMulInteger / DynamicQuantizeLinear)."""
    if runtime in ("pytorch", "pytorch-int8"):
        if runtime == "pytorch-int8":
            torch.backends.quantized.engine = "fbgemm"
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        wrapped = _Path(model, path).eval()
        def step():
            with torch.no_grad():
                wrapped(px, ids, mask)
        return step
    import os, shutil, tempfile
    import onnxruntime as ort
    # The exported and quantized graphs (1-2 GB at full size) live only until the session has read them.
    d = tempfile.mkdtemp(prefix="flava-ort-")
    try:
        f32 = os.path.join(d, "model.onnx")
        with torch.no_grad():
            torch.onnx.export(_Path(model, path).eval(), (px, ids, mask), f32, input_names=["px", "ids", "mask"],
                              opset_version=17, dynamo=False)
        f = f32
        if runtime == "onnxruntime-int8":
            from onnxruntime.quantization import quantize_dynamic, QuantType
            from onnxruntime.quantization.shape_inference import quant_pre_process
            pre, f = os.path.join(d, "model.pre.onnx"), os.path.join(d, "model.int8.onnx")
            quant_pre_process(f32, pre)   # what ORT's quantization guide recommends: shape inference, graph optimization
            quantize_dynamic(pre, f, weight_type=QuantType.QInt8, per_channel=True)
        so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
        sess = ort.InferenceSession(f, so, providers=["CPUExecutionProvider"])
    finally:
        shutil.rmtree(d, ignore_errors=True)
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in {"px": px.numpy(), "ids": ids.numpy(), "mask": mask.numpy()}.items() if k in names}
    return lambda: sess.run(None, feed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["gemm", "int8-gemm", "layer", "model", "train-step"])
    ap.add_argument("--config", help="config.json for train-step (default: FlavaConfig())")
    ap.add_argument("--path", default="image", choices=["image", "text", "multimodal"])
    ap.add_argument("--m", type=int, default=8 * 197)
    ap.add_argument("--shapes", default="768x768,768x3072,3072x768")
    ap.add_argument("--mode", default="forward", choices=["forward", "backward"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=197)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--intermediate", type=int, default=3072)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runtime", default="pytorch", choices=["pytorch", "pytorch-int8", "onnxruntime", "onnxruntime-int8"],
                    help="model: PyTorch float32, PyTorch quantize_dynamic, ONNX Runtime float32 or dynamic int8")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.what == "gemm":
        for spec in a.shapes.split(","):
            i, o = map(int, spec.split("x"))
            x, w = torch.randn(a.m, i), torch.randn(o, i)
            t = timed(lambda: torch.nn.functional.linear(x, w), a.iterations)
            print(json.dumps({"bench": "gemm", "peer": "pytorch", "m": a.m, "in": i, "out": o,
                              "gflops": 2 * a.m * i * o / t / 1e9}))
        return
    if a.what == "int8-gemm":
        # torch.ao.quantization.quantize_dynamic of one Linear (fbgemm: int8 weights per output channel,
        # activations quantized per tensor on the fly), against the float Linear, as flava-bench int8-gemm.
        torch.backends.quantized.engine = "fbgemm"
        for spec in a.shapes.split(","):
            i, o = map(int, spec.split("x"))
            lin = torch.nn.Sequential(torch.nn.Linear(i, o)).eval()
            q = torch.ao.quantization.quantize_dynamic(lin, {torch.nn.Linear}, dtype=torch.qint8)
            x = torch.randn(a.m, i)
            with torch.no_grad():
                t32 = timed(lambda: lin(x), a.iterations)
                t8 = timed(lambda: q(x), a.iterations)
            ops = 2 * a.m * i * o
            print(json.dumps({"bench": "int8_gemm", "peer": "pytorch-quantize_dynamic", "m": a.m, "in": i, "out": o,
                              "int8_gops": ops / t8 / 1e9, "fp32_gflops": ops / t32 / 1e9}))
        return
    if a.what == "train-step":
        from transformers import FlavaConfig, FlavaForPreTraining
        cfg = FlavaConfig.from_json_file(a.config) if a.config else FlavaConfig()
        model = FlavaForPreTraining(cfg).train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.1)
        b = a.batch
        kw = dict(pretraining_inputs(cfg, b, a.tokens), return_loss=True)
        def step():
            opt.zero_grad(set_to_none=True)
            model(**kw).loss.backward()
            opt.step()
        t = timed(step, a.iterations)
        print(json.dumps({"bench": "train_step", "peer": "pytorch", "batch_size": b, "seconds": t,
                          "samples_per_second": b / t, "peak_rss_bytes": peak_rss()}))
        return
    if a.what == "model":
        from transformers import FlavaConfig, FlavaModel
        model = FlavaModel(FlavaConfig()).eval()
        px = torch.randn(a.batch, 3, 224, 224)
        ids = torch.randint(0, 30522, (a.batch, a.tokens)); mask = torch.ones_like(ids)
        step = model_step(model, a.path, px, ids, mask, a.runtime, a.threads)
        if a.runtime.startswith("onnxruntime"):
            import gc
            del model; gc.collect()   # the session holds its own weights
        t = timed(step, a.iterations)
        print(json.dumps({"bench": "model", "peer": a.runtime, "what": a.path, "batch": a.batch, "ms": t * 1000,
                          "items_per_second": a.batch / t, "peak_rss_bytes": peak_rss(), "rss_bytes_after": rss_now()}))
        return
    from transformers import FlavaImageConfig
    from transformers.models.flava.modeling_flava import FlavaLayer
    cfg = FlavaImageConfig(hidden_size=a.hidden, num_attention_heads=a.heads, intermediate_size=a.intermediate)
    cfg._attn_implementation = "eager"
    layer = FlavaLayer(cfg).eval()
    x = torch.randn(a.batch, a.tokens, a.hidden)
    seed = torch.randn(a.batch, a.tokens, a.hidden)
    if a.mode == "forward":
        def step():
            with torch.no_grad():
                layer(x)
    else:
        xg = x.clone().requires_grad_()
        def step():
            layer.zero_grad(set_to_none=True); xg.grad = None
            out = layer(xg)
            out = out[0] if isinstance(out, tuple) else out
            out.backward(seed)
    t = timed(step, a.iterations)
    print(json.dumps({"bench": "layer", "peer": "pytorch", "mode": a.mode, "batch": a.batch, "tokens": a.tokens,
                      "ms": t * 1000, "items_per_second": a.batch / t, "peak_rss_bytes": peak_rss(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
