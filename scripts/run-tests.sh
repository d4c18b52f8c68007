#!/usr/bin/env bash
# Set up, then run the linters and the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m mypy
.venv/bin/python -m pytest -q -n 2 "$@"
# The multi-process tests again with workers spawned, as on macOS and Windows (the fault matrix
# already runs under both start methods; bad input starts nothing).
PET_START_METHOD=spawn exec .venv/bin/python -m pytest -q -n 2 tests/multiproc \
    --ignore=tests/multiproc/test_faults.py --ignore=tests/multiproc/test_bad_input.py
