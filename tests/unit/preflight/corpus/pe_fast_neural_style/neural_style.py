# Corpus case, rewritten after pytorch/examples fast_neural_style/neural_style/neural_style.py:
# transforms.Lambda(lambda ...) inside train(), but the DataLoader has no workers.
import argparse
import sys

import numpy as np
import torch
from torch.optim import Adam
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


class TransformerNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def gram_matrix(y):
    b, ch, h, w = y.size()
    features = y.view(b, ch, w * h)
    return features.bmm(features.transpose(1, 2)) / (ch * h * w)


def train(args):
    device = torch.accelerator.current_accelerator() if args.accel else torch.device("cpu")
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    transform = transforms.Compose([
        transforms.Resize(args.image_size),
        transforms.CenterCrop(args.image_size),
        transforms.ToTensor(),
        transforms.Lambda(lambda x: x.mul(255)),
    ])
    train_dataset = datasets.ImageFolder(args.dataset, transform)
    train_loader = DataLoader(train_dataset, batch_size=args.batch_size)

    transformer = TransformerNet().to(device)
    optimizer = Adam(transformer.parameters(), args.lr)
    mse_loss = torch.nn.MSELoss()
    for e in range(args.epochs):
        transformer.train()
        for batch_id, (x, _) in enumerate(train_loader):
            optimizer.zero_grad()
            x = x.to(device)
            y = transformer(x)
            loss = mse_loss(gram_matrix(y), gram_matrix(x))
            loss.backward()
            optimizer.step()
        print(f"epoch {e} done")


def stylize(args):
    device = torch.device("cpu")
    content_transform = transforms.Compose([transforms.ToTensor(), transforms.Lambda(lambda x: x.mul(255))])
    print(content_transform, device)


def main():
    parser = argparse.ArgumentParser(description="parser for fast-neural-style")
    sub = parser.add_subparsers(title="subcommands", dest="subcommand")
    train_arg_parser = sub.add_parser("train")
    train_arg_parser.add_argument("--epochs", type=int, default=2)
    train_arg_parser.add_argument("--batch-size", type=int, default=4)
    train_arg_parser.add_argument("--dataset", type=str, required=True)
    train_arg_parser.add_argument("--image-size", type=int, default=256)
    train_arg_parser.add_argument("--accel", action="store_true")
    train_arg_parser.add_argument("--seed", type=int, default=42)
    train_arg_parser.add_argument("--lr", type=float, default=1e-3)
    eval_arg_parser = sub.add_parser("eval")
    eval_arg_parser.add_argument("--content-image", type=str, required=True)
    args = parser.parse_args()
    if args.subcommand is None:
        print("ERROR: specify either train or eval")
        sys.exit(1)
    if args.subcommand == "train":
        train(args)
    else:
        stylize(args)


if __name__ == "__main__":
    main()
