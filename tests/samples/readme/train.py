"""The README's ``train.py``: a torchrun-style script (``train.py --lr 0.1``) and a function (``train.py:main``).

As a script it reads torchrun's environment and forms its own process group; as ``train.py:main`` the
launcher calls ``main(ctx)`` with the context. Each rank prints one line the README test looks for.
"""

import argparse
import os

import torch
import torch.distributed as dist


def main(ctx):
    """``train.py:main``: one all-reduce over the launcher's process group."""
    total = torch.tensor(float(ctx.rank))
    dist.all_reduce(total)
    print(f"main: rank {ctx.rank} of {ctx.world_size}, rank sum {int(total)}")
    return ctx.rank


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--extra-arg", action="store_true", help="what the README's sbatch line appends after --")
    lr = parser.parse_args().lr
    dist.init_process_group("gloo")
    total = torch.tensor(float(dist.get_rank()))
    dist.all_reduce(total)
    print(f"script: rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}, lr {lr}, rank sum {int(total)}")
    dist.destroy_process_group()
