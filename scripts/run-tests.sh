#!/usr/bin/env bash
# Set up, then run the linters, the import contracts, the unused-code check and the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/cluster-tools.sh                                             # slurmctld, slurmd, munge, ip (when missing)
.venv/bin/ruff check .
.venv/bin/python -m mypy
.venv/bin/lint-imports                                                    # the flow's import contracts (setup.cfg)
.venv/bin/vulture launcher vulture_whitelist.py --min-confidence 60       # no unused code
.venv/bin/python -m pytest -q -n 2 "$@"
# The multi-process tests again with workers spawned, as on macOS and Windows, but those that run each
# start method they need themselves, or start nothing (marked own_start_methods: the fault matrix, bad input...).
PET_START_METHOD=spawn exec .venv/bin/python -m pytest -q -n 2 tests/multiproc -m "not own_start_methods"
