# Corpus case, rewritten after mindee/doctr references/detection/train.py as described in PR #2148:
# `lambda x: x` is the "no augmentation" branch of T.OneOf inside the Compose built in main(); the
# DataLoader uses -j/--workers.
import argparse
import multiprocessing as mp
import time

import torch
from doctr import transforms as T
from doctr.datasets import DetectionDataset
from doctr.models import detection
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
from torchvision.transforms.v2 import Compose, Normalize, RandomGrayscale, RandomPhotometricDistort


def fit_one_epoch(model, train_loader, batch_transforms, optimizer, device):
    model.train()
    for images, targets in train_loader:
        images = batch_transforms(images.to(device))
        loss = model(images, targets)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main(args):
    if not isinstance(args.workers, int):
        args.workers = min(16, mp.cpu_count())
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    st = time.time()
    val_set = DetectionDataset(img_folder=args.val_path, label_path=args.val_labels,
                               sample_transforms=T.Resize((args.input_size, args.input_size)))
    val_loader = DataLoader(val_set, batch_size=args.batch_size, drop_last=False, num_workers=args.workers,
                            sampler=SequentialSampler(val_set), pin_memory=torch.cuda.is_available(),
                            collate_fn=val_set.collate_fn)
    print(f"Validation set loaded in {time.time() - st:.4}s")

    batch_transforms = Normalize(mean=(0.798, 0.785, 0.772), std=(0.264, 0.2749, 0.287))
    model = detection.__dict__[args.arch](pretrained=args.pretrained).to(device)

    train_set = DetectionDataset(
        img_folder=args.train_path,
        label_path=args.train_labels,
        img_transforms=Compose([
            T.RandomApply(T.ColorInversion(), 0.1),
            T.OneOf([T.RandomJpegQuality(0.9), T.GaussianNoise(0.0, 0.02), lambda x: x]),
            RandomGrayscale(p=0.05),
            RandomPhotometricDistort(p=0.05),
        ]),
        sample_transforms=T.Resize((args.input_size, args.input_size)),
    )
    train_loader = DataLoader(train_set, batch_size=args.batch_size, drop_last=True, num_workers=args.workers,
                              sampler=RandomSampler(train_set), pin_memory=torch.cuda.is_available(),
                              collate_fn=train_set.collate_fn)
    optimizer = torch.optim.Adam(model.parameters(), args.lr, betas=(0.95, 0.99), eps=1e-6)
    for epoch in range(args.epochs):
        fit_one_epoch(model, train_loader, batch_transforms, optimizer, device)
        print(f"Epoch {epoch + 1}/{args.epochs} done")
    print(len(val_loader))


def parse_args():
    parser = argparse.ArgumentParser(description="DocTR training script for text detection (PyTorch)")
    parser.add_argument("arch", type=str, help="text-detection model to train")
    parser.add_argument("--train_path", type=str, required=True)
    parser.add_argument("--train_labels", type=str, required=True)
    parser.add_argument("--val_path", type=str, required=True)
    parser.add_argument("--val_labels", type=str, required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("-b", "--batch_size", type=int, default=2)
    parser.add_argument("--input_size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("-j", "--workers", type=int, default=None, help="number of workers used for dataloading")
    parser.add_argument("--pretrained", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    main(args)
