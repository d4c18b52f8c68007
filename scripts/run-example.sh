#!/usr/bin/env bash
# Set up, then train the example job on 4 CPU processes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m launcher --nprocs 4 examples/train.yaml "$@"
