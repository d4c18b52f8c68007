import torch


def work(rank):
    print(rank)


def main():
    torch.multiprocessing.spawn(work, nprocs=2)


main()  # <- main-guard
