# Corpus case, rewritten after facebookresearch/SparseConvNet examples/3d_segmentation/unet.py (issue #125:
# "Can't pickle local object 'train.<locals>.<lambda>'" on Windows): no __main__ guard; data.train(),
# called at import, iterates DataLoaders with workers and a lambda collate_fn (in data.py).
import math
import time

import data
import sparseconvnet as scn
import torch
import torch.nn as nn
import torch.optim as optim

data.init(-1, 24, 24 * 8, 16)
dimension = 3
reps = 1
m = 32
nPlanes = [m, 2 * m, 3 * m, 4 * m, 5 * m]


class Model(nn.Module):
    def __init__(self):
        nn.Module.__init__(self)
        self.sparseModel = scn.Sequential().add(
            scn.InputLayer(dimension, data.spatialSize, mode=3)).add(
            scn.SubmanifoldConvolution(dimension, 1, m, 3, False)).add(
            scn.UNet(dimension, reps, nPlanes, residual_blocks=False, downsample=[2, 2])).add(
            scn.BatchNormReLU(m)).add(
            scn.OutputLayer(dimension))
        self.linear = nn.Linear(m, data.nClassesTotal)

    def forward(self, x):
        return self.linear(self.sparseModel(x))


model = Model()
trainIterator = data.train()
validIterator = data.valid()

criterion = nn.CrossEntropyLoss()
p = {"n_epochs": 100, "initial_lr": 1e-1, "lr_decay": 4e-2, "weight_decay": 1e-4, "momentum": 0.9}
p["use_cuda"] = torch.cuda.is_available()
dtype = "torch.cuda.FloatTensor" if p["use_cuda"] else "torch.FloatTensor"
dtypei = "torch.cuda.LongTensor" if p["use_cuda"] else "torch.LongTensor"
if p["use_cuda"]:
    model.cuda()
    criterion.cuda()
optimizer = optim.SGD(model.parameters(), lr=p["initial_lr"], momentum=p["momentum"],
                      weight_decay=p["weight_decay"], nesterov=True)

for epoch in range(1, p["n_epochs"] + 1):
    model.train()
    for param_group in optimizer.param_groups:
        param_group["lr"] = p["initial_lr"] * math.exp((1 - epoch) * p["lr_decay"])
    start = time.time()
    for batch in trainIterator:
        optimizer.zero_grad()
        batch["x"][1] = batch["x"][1].type(dtype)
        batch["y"] = batch["y"].type(dtypei)
        loss = criterion.forward(model(batch["x"]), batch["y"])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} took {time.time() - start:.1f}s")
