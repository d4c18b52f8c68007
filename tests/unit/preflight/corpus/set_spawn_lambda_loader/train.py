# Corpus case, written after pytorch/pytorch issue #40403 (comments: forcing spawn to get CUDA into worker
# processes, "then this error occurs inside the Dataset / Dataloader"): the start method is forced to spawn,
# then a DataLoader with workers ships a transform holding a lambda.
import multiprocessing

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def build_loader(root, batch_size, workers):
    tfm = transforms.Compose([
        transforms.ToTensor(),
        transforms.Lambda(lambda x: x.repeat(3, 1, 1)),
    ])
    dataset = datasets.MNIST(root, train=True, download=True, transform=tfm)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)


def main():
    multiprocessing.set_start_method("spawn", force=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 28 * 28, 10)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = build_loader("./data", 64, 4)
    for images, labels in loader:
        loss = torch.nn.functional.cross_entropy(model(images.to(device)), labels.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    main()
