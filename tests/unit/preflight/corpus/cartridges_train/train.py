# Corpus case, written after the snippet in HazyResearch/cartridges issue #20: a DataLoader inside
# train() with collate_fn=lambda x: x[0] and num_workers=1.
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset


@dataclass
class TrainConfig:
    lr: float = 1e-2
    epochs: int = 1
    device: str = "cuda"


class PackedDataset(Dataset):
    def __init__(self, n: int):
        self.items = [torch.randint(0, 100, (16,)) for _ in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        return {"input_ids": self.items[idx]}


def train(config: TrainConfig):
    model = torch.nn.Embedding(100, 8).to(config.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    dataset = PackedDataset(256)
    dataloader = DataLoader(
        dataset,
        shuffle=True,
        batch_size=1,
        collate_fn=lambda x: x[0],
        num_workers=1,
    )
    for epoch in range(config.epochs):
        for batch in dataloader:
            loss = model(batch["input_ids"].to(config.device)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    train(TrainConfig())
