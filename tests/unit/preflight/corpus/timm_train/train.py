# Corpus case, rewritten after huggingface/pytorch-image-models train.py: loaders from timm's create_loader
# (a function with num_workers, not a DataLoader class); distributed setup from the environment; guarded.
import argparse
import time

import torch
import torch.nn as nn
from timm import utils
from timm.data import create_dataset, create_loader, resolve_data_config
from timm.models import create_model
from timm.optim import create_optimizer_v2

parser = argparse.ArgumentParser(description="PyTorch ImageNet Training")
parser.add_argument("data_dir", metavar="DIR", nargs="?")
parser.add_argument("--model", default="resnet50", type=str)
parser.add_argument("-b", "--batch-size", type=int, default=128)
parser.add_argument("--epochs", type=int, default=300)
parser.add_argument("--lr", type=float, default=None)
parser.add_argument("-j", "--workers", type=int, default=4, help="how many training processes to use (default: 4)")
parser.add_argument("--pin-mem", action="store_true", default=False)
parser.add_argument("--device", default="cuda", type=str)


def train_one_epoch(epoch, model, loader, optimizer, loss_fn, device):
    model.train()
    end = time.time()
    for batch_idx, (input, target) in enumerate(loader):
        input, target = input.to(device), target.to(device)
        loss = loss_fn(model(input), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if batch_idx % 50 == 0:
            print(f"epoch {epoch} [{batch_idx}] loss {loss.item():.4f} ({time.time() - end:.2f}s)")
        end = time.time()


def main():
    utils.setup_default_logging()
    args = parser.parse_args()
    device = utils.init_distributed_device(args)
    model = create_model(args.model, pretrained=False)
    model.to(device=device)
    data_config = resolve_data_config(vars(args), model=model)
    dataset_train = create_dataset("", root=args.data_dir, split="train", is_training=True, batch_size=args.batch_size)
    loader_train = create_loader(
        dataset_train,
        input_size=data_config["input_size"],
        batch_size=args.batch_size,
        is_training=True,
        num_workers=args.workers,
        distributed=args.distributed,
        pin_memory=args.pin_mem,
        device=device,
    )
    optimizer = create_optimizer_v2(model, opt="sgd", lr=args.lr or 0.1)
    loss_fn = nn.CrossEntropyLoss().to(device=device)
    for epoch in range(args.epochs):
        train_one_epoch(epoch, model, loader_train, optimizer, loss_fn, device)


if __name__ == "__main__":
    main()
