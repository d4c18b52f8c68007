"""The README's ``pkg.train``: a module run as ``-m pkg.train --lr 0.1`` and a function (``pkg.train:main``)."""

import argparse
import os

import torch
import torch.distributed as dist


def main(ctx):
    """``pkg.train:main``: one all-reduce over the launcher's process group."""
    total = torch.tensor(float(ctx.rank))
    dist.all_reduce(total)
    print(f"pkg main: rank {ctx.rank} of {ctx.world_size}, rank sum {int(total)}")
    return ctx.rank


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    lr = parser.parse_args().lr
    dist.init_process_group("gloo")
    total = torch.tensor(float(dist.get_rank()))
    dist.all_reduce(total)
    print(f"pkg script: rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}, lr {lr}, rank sum {int(total)}")
    dist.destroy_process_group()
