"""Writes what a worker sees (environment, argv, __name__, sys.path[0], cwd) to OUT/rank<RANK>.json."""
import json
import os
import sys
from pathlib import Path

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
seen = {
    "env": dict(os.environ),
    "argv": sys.argv,
    "name": __name__,
    "path0": sys.path[0],
    "cwd": os.getcwd(),
}
try:
    import torch

    seen["threads"] = torch.get_num_threads()
except ImportError:
    pass
(out / f"rank{os.environ['RANK']}.json").write_text(json.dumps(seen))
