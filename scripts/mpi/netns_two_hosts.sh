#!/usr/bin/env bash
# Runs an MPI job across two "machines" on one: two network namespaces joined by a veth pair, so the ranks
# talk over real TCP between two interfaces (not shared memory, not loopback), and mpirun starts the remote
# rank the way it would over ssh (its rsh agent is scripts/mpi/netns_agent.sh, which runs the command in the
# other namespace). Needs root (ip netns) and Open MPI.
#
#   bash scripts/mpi/netns_two_hosts.sh [PROGRAM ARGS…]     (default: .build/release/flava-dist-check)
#
# Exit status: the job's. The namespaces are removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=flava-host-a B=flava-host-b
IP_A=10.77.0.1 IP_B=10.77.0.2
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; rm -f "${HOSTFILE:-}"; }
trap cleanup EXIT
cleanup
ip netns add "$A"; ip netns add "$B"
ip link add veth-flava-a type veth peer name veth-flava-b
ip link set veth-flava-a netns "$A"; ip link set veth-flava-b netns "$B"
ip -n "$A" addr add "$IP_A/24" dev veth-flava-a; ip -n "$B" addr add "$IP_B/24" dev veth-flava-b
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set veth-flava-a up; ip -n "$B" link set veth-flava-b up
# (no ping on a minimal machine: the first MPI connection is the check)

HOSTFILE=$(mktemp)
printf '%s slots=1\n%s slots=1\n' "$IP_A" "$IP_B" > "$HOSTFILE"
[ $# -gt 0 ] || set -- "$PWD/.build/release/flava-dist-check"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# mpirun runs on host A; host B's rank is started through the agent, as ssh would on a cluster.
ip netns exec "$A" timeout -k 10 "${FLAVA_NETNS_TIMEOUT:-600}" mpirun -np 2 --hostfile "$HOSTFILE" \
  --mca plm_rsh_agent "$PWD/scripts/mpi/netns_agent.sh" \
  --mca btl self,tcp --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
  --bind-to none -x OPENBLAS_NUM_THREADS=1 "$@"
