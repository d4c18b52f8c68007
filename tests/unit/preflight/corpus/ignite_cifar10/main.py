# Corpus case, rewritten after pytorch/ignite examples/cifar10/main.py: idist.Parallel starts the processes
# (native backend, spawned) from the guarded run(); loaders come from idist.auto_dataloader with num_workers.
import fire
import ignite.distributed as idist
import torch
import torch.nn as nn
import torch.optim as optim
from ignite.engine import Events, create_supervised_trainer
from torchvision import datasets, models
from torchvision.transforms import Compose, Normalize, Pad, RandomCrop, RandomHorizontalFlip, ToTensor


def get_train_test_datasets(path):
    train_transform = Compose([
        Pad(4), RandomCrop(32, fill=128), RandomHorizontalFlip(), ToTensor(),
        Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    return datasets.CIFAR10(root=path, train=True, download=False, transform=train_transform)


def training(local_rank, config):
    device = idist.device()
    train_dataset = get_train_test_datasets(config["data_path"])
    train_loader = idist.auto_dataloader(train_dataset, batch_size=config["batch_size"],
                                         num_workers=config["num_workers"], shuffle=True, drop_last=True)
    model = idist.auto_model(models.resnet18(num_classes=10))
    optimizer = idist.auto_optim(optim.SGD(model.parameters(), lr=config["learning_rate"], momentum=0.9))
    criterion = nn.CrossEntropyLoss().to(device)
    trainer = create_supervised_trainer(model, optimizer, criterion, device=device)

    @trainer.on(Events.EPOCH_COMPLETED)
    def log_epoch(engine):
        print(f"epoch {engine.state.epoch} loss {engine.state.output:.4f}")

    trainer.run(train_loader, max_epochs=config["num_epochs"])


def run(data_path="/tmp/cifar10", batch_size=512, num_workers=12, learning_rate=0.4, num_epochs=24,
        backend=None, nproc_per_node=None, **spawn_kwargs):
    config = {"data_path": data_path, "batch_size": batch_size, "num_workers": num_workers,
              "learning_rate": learning_rate, "num_epochs": num_epochs}
    spawn_kwargs["nproc_per_node"] = nproc_per_node
    with idist.Parallel(backend=backend, **spawn_kwargs) as parallel:
        parallel.run(training, config)


if __name__ == "__main__":
    torch.backends.cudnn.benchmark = True
    fire.Fire({"run": run})
