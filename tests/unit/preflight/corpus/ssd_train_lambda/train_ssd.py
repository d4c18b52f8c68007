# Corpus case, rewritten after qfgaohao/pytorch-ssd train_ssd.py (issue #55: "Can't pickle local object
# 'TrainAugmentation.__init__.<locals>.<lambda>'" on Windows): the transform object comes from the local
# vision package; the DataLoader uses --num_workers (default 4).
import argparse
import logging

import torch
from torch.utils.data import ConcatDataset, DataLoader
from vision.datasets.voc_dataset import VOCDataset
from vision.ssd.data_preprocessing import TestTransform, TrainAugmentation
from vision.ssd.ssd import MatchPrior

parser = argparse.ArgumentParser(description="Single Shot MultiBox Detector Training With Pytorch")
parser.add_argument("--datasets", nargs="+", help="Dataset directory path")
parser.add_argument("--batch_size", default=32, type=int)
parser.add_argument("--num_epochs", default=120, type=int)
parser.add_argument("--num_workers", default=4, type=int, help="Number of workers used in dataloading")
parser.add_argument("--use_cuda", default=True, type=bool)
parser.add_argument("--lr", default=1e-3, type=float)
args = parser.parse_args()
DEVICE = torch.device("cuda:0" if torch.cuda.is_available() and args.use_cuda else "cpu")


def train(loader, net, criterion, optimizer, device):
    net.train(True)
    for images, boxes, labels in loader:
        images, boxes, labels = images.to(device), boxes.to(device), labels.to(device)
        optimizer.zero_grad()
        confidence, locations = net(images)
        loss = criterion(confidence, locations, labels, boxes)
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    logging.info(args)
    train_transform = TrainAugmentation(300, 127, 128.0)
    target_transform = MatchPrior(0.1, 0.2, 0.5)
    test_transform = TestTransform(300, 127, 128.0)
    datasets = [VOCDataset(path, transform=train_transform, target_transform=target_transform) for path in args.datasets]
    train_dataset = ConcatDataset(datasets)
    train_loader = DataLoader(train_dataset, args.batch_size, num_workers=args.num_workers, shuffle=True)
    net = torch.nn.Conv2d(3, 6, 3).to(DEVICE)
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    for epoch in range(args.num_epochs):
        train(train_loader, net, torch.nn.functional.smooth_l1_loss, optimizer, device=DEVICE)
