from torch.utils.data import DataLoader

loader = DataLoader(list(range(8)), batch_size=2, num_workers=2)
for batch in loader:  # <- main-guard
    print(batch)
