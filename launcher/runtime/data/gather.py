"""``gather_for_metrics``: every rank's per-sample values of one evaluation pass, in global sample order.

Worker side: imports torch, never the launch side.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def gather_for_metrics(tensor: torch.Tensor, *, num_samples: int | None = None) -> torch.Tensor:
    """Every rank's per-sample values in global sample order, each sample once.

    ``tensor`` holds this rank's values for a whole pass of a pipeline loader
    (first dimension: samples, in the loader's order). Ranks may hold
    different counts (eval loaders). The result interleaves ranks back into
    the global order (rank ``r``'s j-th sample is global position ``j * W +
    r``) and keeps the first ``num_samples`` (the dataset length), which drops
    the padding of a training loader. Works without a process group (one rank).
    Call it once after the pass, on every rank.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor[:num_samples] if num_samples is not None else tensor
    world = dist.get_world_size()
    count = torch.tensor([tensor.shape[0]], device=tensor.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    lengths = [int(c.item()) for c in counts]
    longest = max(lengths)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    stacked = torch.stack(parts, dim=1)  # [longest, world, ...]: row j holds global positions j*W .. j*W+W-1
    valid = torch.arange(longest, device=tensor.device)[:, None] < torch.tensor(lengths, device=tensor.device)
    merged = stacked[valid]
    return merged[:num_samples] if num_samples is not None else merged
