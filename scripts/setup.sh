#!/usr/bin/env bash
# Create .venv with torch 2.13.0 (CPU) first, then the project and its test/dev tools.
# torch is pinned before anything else so that no dependency can pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 numpy
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,dev]'
.venv/bin/python -c 'import torch; assert torch.__version__.startswith("2.13.0"), torch.__version__'
