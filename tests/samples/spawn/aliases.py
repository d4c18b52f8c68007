from torch.multiprocessing import spawn as start_all


def work(rank):
    pass


if True:
    start_all(work, nprocs=2)  # <- main-guard
