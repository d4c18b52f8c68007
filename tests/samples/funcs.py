"""Function entrypoints: called as fn(ctx, *args, **kwargs) on every rank."""
import json
import os
from pathlib import Path


def record(ctx, out, tag="none", **kwargs):
    Path(out).mkdir(parents=True, exist_ok=True)
    info = {
        "rank": ctx.rank, "local_rank": ctx.local_rank, "world_size": ctx.world_size,
        "local_world_size": ctx.local_world_size, "backend": ctx.backend, "device": str(ctx.device),
        "is_main": ctx.is_main, "seed": ctx.seed, "tag": tag, "kwargs": kwargs,
        "env_rank": os.environ["RANK"], "extra_env": os.environ.get("JOB_FLAVOUR"),
    }
    Path(out, f"rank{ctx.rank}.json").write_text(json.dumps(info))
    return ctx.rank * 10


def ordered(ctx, out):
    """main_process_first: local rank 0 writes first, the others see its file."""
    marker = Path(out, "first")
    with ctx.main_process_first():
        saw_marker = marker.exists()
        if ctx.local_rank == 0:
            marker.write_text("written by local rank 0")
    Path(out, f"saw{ctx.rank}").write_text(str(saw_marker))
