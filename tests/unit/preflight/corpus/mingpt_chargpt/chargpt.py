# Corpus case, rewritten after karpathy/minGPT projects/chargpt/chargpt.py: the Trainer of the local
# mingpt package builds a DataLoader with num_workers=4; the callback is a local function run in the
# parent (never pickled).
import os
import sys

import torch
from mingpt.trainer import Trainer
from torch.utils.data import Dataset


class CharDataset(Dataset):
    def __init__(self, data, block_size=128):
        chars = sorted(set(data))
        self.stoi = {ch: i for i, ch in enumerate(chars)}
        self.itos = {i: ch for i, ch in enumerate(chars)}
        self.block_size = block_size
        self.vocab_size = len(chars)
        self.data = data

    def __len__(self):
        return len(self.data) - self.block_size

    def __getitem__(self, idx):
        chunk = self.data[idx:idx + self.block_size + 1]
        dix = [self.stoi[s] for s in chunk]
        return torch.tensor(dix[:-1], dtype=torch.long), torch.tensor(dix[1:], dtype=torch.long)


class TinyLM(torch.nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab_size, 64)
        self.head = torch.nn.Linear(64, vocab_size)

    def forward(self, idx, targets=None):
        logits = self.head(self.emb(idx))
        loss = None
        if targets is not None:
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


if __name__ == "__main__":
    text = open(sys.argv[1] if len(sys.argv) > 1 else "input.txt").read()
    train_dataset = CharDataset(text)
    model = TinyLM(train_dataset.vocab_size)
    trainer = Trainer(Trainer.get_default_config(), model, train_dataset)

    def batch_end_callback(trainer):
        if trainer.iter_num % 10 == 0:
            print(f"iter {trainer.iter_num}: train loss {trainer.loss.item():.5f}")
        if trainer.iter_num % 500 == 0:
            torch.save(model.state_dict(), os.path.join("out", "model.pt"))

    trainer.set_callback("on_batch_end", batch_end_callback)
    trainer.run()
