"""Works under torchrun on Linux (fork DataLoader workers), breaks under spawn: a lambda collate_fn."""
import torch
from torch.utils.data import DataLoader

if __name__ == "__main__":
    loader = DataLoader(list(range(8)), batch_size=4, num_workers=2, collate_fn=lambda batch: torch.tensor(batch))
    print("sum", sum(int(b.sum()) for b in loader))
