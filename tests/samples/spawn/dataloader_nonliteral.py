import argparse

from torch.utils.data import DataLoader

args = argparse.ArgumentParser().parse_args()
for batch in DataLoader(list(range(8)), num_workers=args.workers):  # <- main-guard
    print(batch)
