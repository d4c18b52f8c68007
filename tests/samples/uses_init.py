"""A torchrun-style script that asks launcher.init() for its context."""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import launcher

ctx = launcher.init()
assert launcher.init() is ctx, "init() must be idempotent"
total = torch.tensor([float(ctx.rank + 1)])
dist.all_reduce(total)
Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
Path(sys.argv[1], f"rank{ctx.rank}.json").write_text(json.dumps(
    {"rank": ctx.rank, "world_size": ctx.world_size, "sum": total.item(), "backend": ctx.backend}))
ctx.close()
