# Corpus case, rewritten after kentaroy47/vision-transformers-cifar10 train_cifar10.py (issue #26: the
# bootstrapping RuntimeError on Windows): a module-level script; loaders with num_workers=8 iterated by
# train()/test(), which the module-level epoch loop calls; the model moves to CUDA first.
import argparse
import os
import time

import torch
import torch.nn as nn
import torch.optim as optim
import torchvision
import torchvision.transforms as transforms
from models.vit import ViT
from utils import progress_bar

parser = argparse.ArgumentParser(description="PyTorch CIFAR10/100 Training")
parser.add_argument("--lr", default=1e-4, type=float)
parser.add_argument("--bs", default="512")
parser.add_argument("--size", default="32")
parser.add_argument("--n_epochs", type=int, default="200")
parser.add_argument("--patch", default="4", type=int)
parser.add_argument("--noamp", action="store_true")
args = parser.parse_args()

bs = int(args.bs)
size = int(args.size)
use_amp = not args.noamp
device = "cuda" if torch.cuda.is_available() else "cpu"
best_acc = 0
mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)

transform_train = transforms.Compose([
    transforms.RandomCrop(32, padding=4),
    transforms.Resize(size),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize(mean, std),
])
transform_test = transforms.Compose([transforms.Resize(size), transforms.ToTensor(), transforms.Normalize(mean, std)])

trainset = torchvision.datasets.CIFAR10(root="./data", train=True, download=True, transform=transform_train)
trainloader = torch.utils.data.DataLoader(trainset, batch_size=bs, shuffle=True, num_workers=8)
testset = torchvision.datasets.CIFAR10(root="./data", train=False, download=True, transform=transform_test)
testloader = torch.utils.data.DataLoader(testset, batch_size=100, shuffle=False, num_workers=8)

net = ViT(image_size=size, patch_size=args.patch, num_classes=10, dim=512, depth=6, heads=8, mlp_dim=512,
          dropout=0.1, emb_dropout=0.1)
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(net.parameters(), lr=args.lr)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.n_epochs)
scaler = torch.cuda.amp.GradScaler(enabled=use_amp)


def train(epoch):
    net.train()
    train_loss = 0
    for batch_idx, (inputs, targets) in enumerate(trainloader):
        inputs, targets = inputs.to(device), targets.to(device)
        with torch.cuda.amp.autocast(enabled=use_amp):
            loss = criterion(net(inputs), targets)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        train_loss += loss.item()
        progress_bar(batch_idx, len(trainloader), f"Loss: {train_loss / (batch_idx + 1):.3f}")
    return train_loss / (batch_idx + 1)


def test(epoch):
    global best_acc
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for batch_idx, (inputs, targets) in enumerate(testloader):
            inputs, targets = inputs.to(device), targets.to(device)
            _, predicted = net(inputs).max(1)
            total += targets.size(0)
            correct += predicted.eq(targets).sum().item()
    acc = 100.0 * correct / total
    if acc > best_acc:
        os.makedirs("checkpoint", exist_ok=True)
        torch.save({"net": net.state_dict(), "acc": acc, "epoch": epoch}, f"./checkpoint/vit-{args.patch}-ckpt.t7")
        best_acc = acc
    return acc


net.cuda()
for epoch in range(0, args.n_epochs):
    start = time.time()
    trainloss = train(epoch)
    acc = test(epoch)
    scheduler.step(epoch - 1)
    print(f"epoch {epoch}: loss {trainloss:.3f} acc {acc:.2f} ({time.time() - start:.0f}s)")
