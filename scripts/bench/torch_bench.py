#!/usr/bin/env python3
"""PyTorch side of BENCHMARKS.md, measured exactly as flava-bench measures ours (median of timed repetitions
after one warm-up, peak RSS of the process). Prints one JSON object per measurement.

  torch_bench.py gemm  [--m 1576] [--shapes 768x768,768x3072,3072x768] [--iterations 20]
  torch_bench.py layer --mode forward|backward [--batch 8] [--tokens 197] [--iterations 10]
  torch_bench.py model --path image|text|multimodal [--batch 8] [--tokens 77] [--iterations 5]   (FlavaModel, FlavaConfig())

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
        def step():
            with torch.no_grad():
                if a.path == "image": model.get_image_features(pixel_values=px)
                elif a.path == "text": model.get_text_features(input_ids=ids, attention_mask=mask)
                else: model(input_ids=ids, attention_mask=mask, pixel_values=px)
        t = timed(step, a.iterations)
        print(json.dumps({"bench": "model", "peer": "pytorch", "what": a.path, "batch": a.batch, "ms": t * 1000,
                          "items_per_second": a.batch / t, "peak_rss_bytes": peak_rss()}))
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
