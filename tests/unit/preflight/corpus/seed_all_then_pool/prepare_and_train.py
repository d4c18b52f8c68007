# Corpus case, written after pytorch/pytorch issue #1615 (torch.cuda.manual_seed_all is lazy: it queues
# the seed and initialises nothing): seeding for reproducibility, then a Pool of CPU-only preprocessing
# workers forked before the model ever touches the GPU (the seeds are also set again right before the Pool).
import argparse
import glob
import multiprocessing
import random

import numpy as np
import torch


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def featurize(path):
    data = np.load(path)
    return torch.from_numpy(data).float().mean(0).numpy()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/*.npy")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seed_everything(args.seed)
    torch.cuda.manual_seed_all(args.seed)
    files = sorted(glob.glob(args.data))
    with multiprocessing.Pool(args.workers) as pool:
        features = pool.map(featurize, files)
    x = torch.tensor(np.stack(features))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = torch.nn.Linear(x.shape[1], 1).to(device)
    loss = model(x.to(device)).pow(2).mean()
    loss.backward()
    print(f"loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
