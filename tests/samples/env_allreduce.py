"""A plain ``env://`` script (no launcher API): joins the gloo group, sums rank + 1 over every rank, and writes
what it saw (environment, the sum) to OUT/rank<RANK>.json."""
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
total = torch.tensor([dist.get_rank() + 1.0])
dist.all_reduce(total)
seen = {"env": dict(os.environ), "sum": total.item()}
dist.destroy_process_group()
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / f"rank{os.environ['RANK']}.json").write_text(json.dumps(seen))
