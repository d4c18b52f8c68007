#!/usr/bin/env bash
# The real daemons the SLURM and multi-node tests start: Debian's slurm-wlm and munge, and iproute2 (ip netns).
# Installed only when missing; needs root and Debian's package registry.
set -euo pipefail
missing=()
command -v slurmctld >/dev/null || missing+=(slurm-wlm slurmctld slurmd slurm-client)
command -v munged >/dev/null || missing+=(munge)
command -v ip >/dev/null || missing+=(iproute2)
command -v nsenter >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
