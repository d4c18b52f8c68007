#!/usr/bin/env bash
# Set up, then run the linters and the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest -q "$@"
