#!/usr/bin/env python3
"""PyTorch side of the data-parallel benchmark (BENCHMARKS.md): one FlavaForPreTraining training step of
transformers under DistributedDataParallel (gloo), measured as `flava-bench dp-step` measures ours: the same
config, the same global batch split evenly among the ranks, clipping at 1 and AdamW, the median of timed steps
after one warm-up, the global samples per second and the largest peak RSS of a rank. Threads per rank: the cores
divided among the local ranks, as ours. Run on one process, or under torchrun:

  torchrun --nproc_per_node 2 torch_ddp_step.py --config small.json --batch 32 --tokens 32 --iterations 5

(transformers' FLAVA, like ours, gathers every rank's embeddings for the global contrastive loss, with backprop
through the gather: global_backprop_contrastive.)
"""
import argparse, json, os, resource, time
import torch
import torch.distributed as dist
from torch_bench import pretraining_inputs   # the same batch as torch_bench.py train-step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", help="config.json (default: FlavaConfig())")
    ap.add_argument("--batch", type=int, default=32, help="global batch")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=5)
    a = ap.parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1")); rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, os.cpu_count() // local))
    if world > 1:
        dist.init_process_group("gloo")
    torch.manual_seed(0)
    from transformers import FlavaConfig, FlavaForPreTraining
    cfg = FlavaConfig.from_json_file(a.config) if a.config else FlavaConfig()
    model = FlavaForPreTraining(cfg).train()
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)
    B = a.batch
    b = B // world; r0 = rank * b
    # The global batch (the same on every rank: seeded alike), then this rank's rows.
    kw = {k: v[r0:r0 + b] for k, v in pretraining_inputs(cfg, B, a.tokens).items()}

    def step():
        opt.zero_grad(set_to_none=True)
        model(**kw, return_loss=True).loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    step()
    ts = []
    for _ in range(a.iterations):
        t0 = time.time(); step(); ts.append(time.time() - t0)
    t = sorted(ts)[len(ts) // 2]
    rss = torch.tensor([float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)])
    if world > 1:
        dist.all_reduce(rss, op=dist.ReduceOp.MAX)
    if rank == 0:
        print(json.dumps({"bench": "dp_step", "peer": "pytorch-ddp", "batch_size": B, "ranks": world, "seconds": t,
                          "samples_per_second": B / t, "peak_rss_bytes": int(rss.item())}))
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
