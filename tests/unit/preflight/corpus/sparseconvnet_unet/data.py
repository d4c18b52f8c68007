# Corpus case, rewritten after facebookresearch/SparseConvNet examples/3d_segmentation/data.py: train()
# and valid() iterate DataLoaders with num_workers=12 whose collate_fn is a lambda, then return a loader
# whose collate_fn is a local function.
import glob

import numpy as np
import torch

categories = ["02691156", "02773838", "02954340", "02958343", "03001627", "03261776", "03467517", "03624134",
              "03636649", "03642806", "03790512", "03797390", "03948459", "04099429", "04225987", "04379243"]
nClasses = [4, 2, 2, 4, 4, 3, 3, 2, 4, 2, 6, 2, 3, 3, 3, 3]
classOffsets = np.cumsum([0] + nClasses)


def init(c, resolution=50, sz=50 * 8 + 8, batchSize=16):
    globals()["categ"] = c
    globals()["resolution"] = resolution
    globals()["batchSize"] = batchSize
    globals()["spatialSize"] = torch.LongTensor([sz] * 3)
    globals()["nClassesTotal"] = int(classOffsets[-1]) if c == -1 else int(nClasses[c])


def load(xF, c, classOffset, nc):
    xl = np.loadtxt(xF[0])
    xl /= (xl ** 2).sum(1).max() ** 0.5
    y = np.loadtxt(xF[0][:-9] + "seg").astype("int64") + classOffset - 1
    return (xF[0], xl, y, c, classOffset, nc, np.random.randint(1e6))


def train():
    d = []
    for c in range(16):
        for x in torch.utils.data.DataLoader(
            glob.glob("train_val/" + categories[c] + "/*.pts.train"),
            collate_fn=lambda x: load(x, c, classOffsets[c], nClasses[c]),
            num_workers=12,
        ):
            d.append(x)

    def merge(tbl):
        xl_ = [np.floor(resolution * (4 + xl)).astype("int64") for _, xl, *_ in tbl]
        y_ = [y for _, _, y, *_ in tbl]
        return {"x": [torch.from_numpy(np.vstack(xl_)), torch.ones(sum(len(x) for x in xl_), 1)],
                "y": torch.from_numpy(np.hstack(y_))}

    return torch.utils.data.DataLoader(d, batch_size=batchSize, collate_fn=merge, num_workers=10, shuffle=True)


def valid():
    d = []
    for c in range(16):
        for x in torch.utils.data.DataLoader(
            glob.glob("train_val/" + categories[c] + "/*.pts.valid"),
            collate_fn=lambda x: load(x, c, classOffsets[c], nClasses[c]),
            num_workers=12,
        ):
            d.append(x)

    def merge(tbl):
        xl_ = [np.floor(resolution * (4 + xl)).astype("int64") for _, xl, *_ in tbl]
        y_ = [y for _, _, y, *_ in tbl]
        return {"x": [torch.from_numpy(np.vstack(xl_)), torch.ones(sum(len(x) for x in xl_), 1)],
                "y": torch.from_numpy(np.hstack(y_))}

    return torch.utils.data.DataLoader(d, batch_size=batchSize, collate_fn=merge, num_workers=10, shuffle=True)
