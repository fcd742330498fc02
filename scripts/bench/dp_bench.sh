#!/usr/bin/env bash
# Data-parallel training step, ours vs PyTorch DDP (gloo) with transformers' FlavaForPreTraining, on this
# machine: 1 process × all cores against 2 ranks × half the cores each, at the small pretraining size (global
# batch 32) and at FlavaConfig() size (global batch 4); ours also with the sharded optimizer (small) and, as
# root with iproute2, with the two ranks in two network namespaces joined by a veth pair (TCP between two
# interfaces, scripts/mpi/netns_two_hosts.sh). Each line: median step after a warm-up, global samples per second,
# the largest peak RSS of a rank, and (ours) rank 0's collectives in the median step.
# ROUNDS=N repeats the set, alternating ours and PyTorch; SIZES="small full" picks the sizes.
#   bash scripts/bench/dp_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${FLAVA_PEER_VENV:-/opt/venv-peer}"
rounds="${ROUNDS:-1}"
swift build -c release --product flava-bench >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun -np 2 --bind-to none --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
bench="$PWD/.build/release/flava-bench"
cfg=$(mktemp --suffix .json)
"$bench" train-step --size small --batch-size 2 --iterations 1 --warmup 0 --dump-config "$cfg" >/dev/null
veth=0; [ "$(id -u)" = 0 ] && command -v ip >/dev/null && veth=1
for _ in $(seq "$rounds"); do
  for size in ${SIZES:-small full}; do
    if [ "$size" = small ]; then b=32; it=5; pycfg=(--config "$cfg" --tokens 32); else b=4; it=2; pycfg=(--tokens 77); fi
    "$bench" dp-step --size "$size" --batch-size "$b" --iterations "$it" --json | grep '^{'
    "$venv/bin/python" scripts/bench/torch_ddp_step.py "${pycfg[@]}" --batch "$b" --iterations "$it" 2>/dev/null
    "${mpi[@]}" "$bench" dp-step --size "$size" --batch-size "$b" --iterations "$it" --json | grep '^{'
    "$venv/bin/torchrun" --nproc_per_node 2 scripts/bench/torch_ddp_step.py "${pycfg[@]}" --batch "$b" --iterations "$it" 2>/dev/null | grep '^{'
    if [ "$size" = small ]; then
      "${mpi[@]}" "$bench" dp-step --size small --batch-size 32 --iterations 5 --shard-optimizer --json | grep '^{'
      [ "$veth" = 1 ] && bash scripts/mpi/netns_two_hosts.sh "$bench" dp-step --size small --batch-size 32 --iterations 5 --json 2>/dev/null \
        | grep '^{' | sed 's/^{/{"link":"veth",/'
    fi
  done
done
rm -f "$cfg"
