"""Run with -m samplepkg.mod OUT, or as samplepkg.mod:work."""
import json
import os
import sys
from pathlib import Path


def work(ctx, out):
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, f"rank{ctx.rank}.json").write_text(json.dumps({"rank": ctx.rank, "how": "function"}))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    Path(out, f"rank{os.environ['RANK']}.json").write_text(json.dumps({"argv": sys.argv, "name": __name__}))
