# Corpus case, rewritten after Lightning-AI/pytorch-lightning examples/pytorch/domain_templates/
# computer_vision_fine_tuning.py: a LightningDataModule builds DataLoaders with num_workers; transforms are
# Compose objects of torchvision classes; LightningCLI runs under the guard.
from pathlib import Path

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule, LightningModule, cli_lightning_logo
from lightning.pytorch.cli import LightningCLI
from torch import nn, optim
from torch.utils.data import DataLoader
from torchvision import models, transforms
from torchvision.datasets import ImageFolder


class CatDogImageDataModule(LightningDataModule):
    def __init__(self, dl_path: str = "data", num_workers: int = 0, batch_size: int = 8):
        super().__init__()
        self._dl_path = dl_path
        self._num_workers = num_workers
        self._batch_size = batch_size

    @property
    def data_path(self):
        return Path(self._dl_path).joinpath("cats_and_dogs_filtered")

    @property
    def normalize_transform(self):
        return transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])

    @property
    def train_transform(self):
        return transforms.Compose([transforms.Resize((224, 224)), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor(), self.normalize_transform])

    @property
    def valid_transform(self):
        return transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(), self.normalize_transform])

    def create_dataset(self, root, transform):
        return ImageFolder(root=root, transform=transform)

    def __dataloader(self, train: bool):
        if train:
            dataset = self.create_dataset(self.data_path.joinpath("train"), self.train_transform)
        else:
            dataset = self.create_dataset(self.data_path.joinpath("validation"), self.valid_transform)
        return DataLoader(dataset=dataset, batch_size=self._batch_size, num_workers=self._num_workers, shuffle=train)

    def train_dataloader(self):
        return self.__dataloader(train=True)

    def val_dataloader(self):
        return self.__dataloader(train=False)


class TransferLearningModel(LightningModule):
    def __init__(self, backbone: str = "resnet50", lr: float = 1e-3):
        super().__init__()
        self.feature_extractor = nn.Sequential(*list(getattr(models, backbone)(weights="DEFAULT").children())[:-1])
        self.fc = nn.Linear(2048, 1)
        self.lr = lr

    def forward(self, x):
        return self.fc(self.feature_extractor(x).squeeze(-1).squeeze(-1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.binary_cross_entropy_with_logits(self(x).squeeze(-1), y.float())

    def configure_optimizers(self):
        return optim.Adam(self.parameters(), lr=self.lr)


def cli_main():
    MyCLI = LightningCLI  # noqa: N806
    MyCLI(TransferLearningModel, CatDogImageDataModule, seed_everything_default=1234)


if __name__ == "__main__":
    cli_lightning_logo()
    torch.set_float32_matmul_precision("high")
    cli_main()
