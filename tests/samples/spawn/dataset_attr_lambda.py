import multiprocessing as mp

from torch.utils.data import DataLoader, Dataset

SPAWN = mp.get_context("spawn")


class Squares(Dataset):
    def __init__(self):
        self.fn = lambda x: x * x  # <- pickle

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.fn(i)


if __name__ == "__main__":
    for batch in DataLoader(Squares(), num_workers=2, multiprocessing_context=SPAWN):
        print(batch)
