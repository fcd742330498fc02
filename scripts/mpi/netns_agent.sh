#!/usr/bin/env bash
# Open MPI's rsh agent for scripts/mpi/netns_two_hosts.sh: called as `agent [ssh options] HOST COMMAND…`, runs
# COMMAND (a shell command line, as ssh would) in the network namespace of HOST.
set -euo pipefail
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done   # ssh-style options, if any
host=$1; shift
case "$host" in
  10.77.0.1) ns=flava-host-a ;;
  10.77.0.2) ns=flava-host-b ;;
  *) echo "netns_agent: unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" sh -c "$*"
