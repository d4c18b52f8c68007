"""A job whose rank 1 fails after the process group formed, in the attempts before ``--fail-attempts``.

Every attempt joins a gloo group and meets in a barrier first, so a restart
that reuses the previous attempt's rendezvous state hangs or fails here.
``--fail-attempts -1`` fails in every attempt.
"""

import argparse
import os

import torch.distributed as dist


class InjectedFailure(RuntimeError):
    pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail-attempts", type=int, default=1)
    args = parser.parse_args()
    attempt = int(os.environ["TORCHELASTIC_RESTART_COUNT"])
    dist.init_process_group("gloo")
    dist.barrier()
    failing = args.fail_attempts < 0 or attempt < args.fail_attempts
    if failing and dist.get_rank() == 1:
        raise InjectedFailure(f"rank 1 fails in attempt {attempt}")
    dist.barrier()  # rank 0 waits here for rank 1, which failed: the launcher stops it
    total = torch_sum(dist.get_rank())
    dist.destroy_process_group()
    print(f"attempt {attempt} done, sum {total}")


def torch_sum(value: int) -> int:
    import torch

    tensor = torch.tensor([value])
    dist.all_reduce(tensor)
    return int(tensor.item())


if __name__ == "__main__":
    main()
