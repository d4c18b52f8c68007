import torch.multiprocessing as mp
from torch.utils.data import DataLoader


def train(rank):
    loader = DataLoader(
        list(range(64)),
        batch_size=8,
        num_workers=2,
        multiprocessing_context="spawn",
        collate_fn=lambda batch: batch,  # <- pickle
    )
    for batch in loader:
        pass


def main():
    def evaluate(rank):
        print("eval", rank)

    mp.spawn(train, nprocs=2)
    mp.spawn(evaluate, nprocs=2)  # <- pickle


main()  # <- main-guard
