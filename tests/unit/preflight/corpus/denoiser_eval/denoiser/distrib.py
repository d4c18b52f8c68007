# Corpus case, rewritten after facebookresearch/denoiser denoiser/distrib.py: a *loader* helper.
import torch
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

rank = 0
world_size = 1


def loader(dataset, *args, shuffle=False, klass=DataLoader, **kwargs):
    """Create a dataloader properly in case of distributed training."""
    if world_size == 1:
        return klass(dataset, *args, shuffle=shuffle, **kwargs)
    if shuffle:
        sampler = DistributedSampler(dataset)
        return klass(dataset, *args, **kwargs, sampler=sampler)
    return klass(Subset(dataset, list(range(rank, len(dataset), world_size))), *args, shuffle=shuffle, **kwargs)


def average(metrics, count=1.0):
    if world_size == 1:
        return metrics
    tensor = torch.tensor(list(metrics) + [1], device="cuda", dtype=torch.float32)
    tensor *= count
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return (tensor[:-1] / tensor[-1]).cpu().numpy().tolist()
