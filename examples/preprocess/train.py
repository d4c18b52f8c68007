"""CPU preprocessing in threads: each batch of compressed images is decoded and augmented by a thread pool.

Run ``python -m launcher --nprocs 2 --seed 0 examples/preprocess/train.py:main`` (README.md).
The dataset stores every image zlib-compressed, as a dataset of JPEG or PNG files
would; ``__getitems__`` (which the DataLoader calls with a whole batch of indices)
hands the per-sample work to ``map_in_threads``. Inflating and numpy's flips and
casts release the GIL, so the threads run in parallel. The DataLoader's workers
(``data.num_workers``) each get their own pool; the threads only make CPU
tensors, and the training thread moves the batch to the device.
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from launcher.runtime.data.preprocess import map_in_threads

SIDE = 32


class CompressedImages(Dataset[tuple[torch.Tensor, int]]):
    """Noisy images of two classes (bright top half or bright bottom half), stored compressed."""

    def __init__(self, samples: int = 2048, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 2, samples)
        self.blobs = []
        for label in self.labels:
            image = rng.integers(0, 96, (SIDE, SIDE, 3), dtype=np.uint8)
            half = slice(0, SIDE // 2) if label == 0 else slice(SIDE // 2, SIDE)
            image[half] += 128
            self.blobs.append(zlib.compress(image.tobytes()))

    def __len__(self) -> int:
        return len(self.blobs)

    def load(self, index: int) -> tuple[torch.Tensor, int]:
        """Decode and augment one sample: runs in a helper thread, so CPU work only (never torch.cuda)."""
        image = np.frombuffer(zlib.decompress(self.blobs[index]), dtype=np.uint8).reshape(SIDE, SIDE, 3)
        if index % 2:  # a left-right flip keeps the label: top/bottom is what matters
            image = image[:, ::-1]
        pixels = image.transpose(2, 0, 1).astype(np.float32) / 255.0
        return torch.from_numpy(pixels), int(self.labels[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.load(index)

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        return map_in_threads(self.load, indices, max_workers=2)


def main(ctx, epochs: int = 2, lr: float = 0.05) -> float:  # type: ignore[no-untyped-def]
    loader = ctx.dataloader(CompressedImages(seed=ctx.seed or 0), batch_size=64, num_workers=1)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                          nn.Linear(128, 2)).to(ctx.device)
    model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    started, samples, correct = time.perf_counter(), 0, 0
    for _epoch in ctx.epochs(epochs):
        samples = correct = 0
        for images, labels in loader:
            images, labels = images.to(ctx.device), labels.to(ctx.device)  # to the device in this thread
            optimizer.zero_grad()
            logits = model(images)
            nn.functional.cross_entropy(logits, labels).backward()
            optimizer.step()
            ctx.step()
            samples += len(labels)
            correct += int((logits.argmax(1) == labels).sum())
    accuracy = correct / samples
    ctx.print(f"{ctx.world_size} processes, {epochs} epochs in {time.perf_counter() - started:.1f} s; "
              f"last epoch accuracy on rank 0's shard: {accuracy:.2f}")
    return accuracy
