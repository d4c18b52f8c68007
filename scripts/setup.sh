#!/usr/bin/env bash
# Create .venv with torch 2.13.0 (CPU) first, then the project and its test/dev tools.
# torch is pinned before anything else so that no dependency can pull a multi-GB CUDA build. PyPI's Linux
# wheel of torch is that CUDA build: torch comes from PyTorch's CPU wheel index when it answers within
# 2 s, else from pip's own configuration (a mirror, a wheel folder), unchanged. The index is asked while
# the venv is created, so that a machine without it waits no longer.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
"$PYTHON" - "$TORCH_CPU_INDEX" <<'EOF' &
import sys
import urllib.request

try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/torch/", method="HEAD"), timeout=2).close()
except Exception:
    sys.exit(1)
EOF
probe=$!
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if wait "$probe"; then
    echo "setup: torch from $TORCH_CPU_INDEX (the CPU build)"
    "${pip[@]}" --index-url "$TORCH_CPU_INDEX" torch==2.13.0 numpy
else
    echo "setup: $TORCH_CPU_INDEX does not answer: torch from pip's configured sources"
    "${pip[@]}" torch==2.13.0 numpy
fi
"${pip[@]}" -e '.[test,dev,report]'
.venv/bin/python -c 'import torch; assert torch.__version__.startswith("2.13.0"), torch.__version__'
