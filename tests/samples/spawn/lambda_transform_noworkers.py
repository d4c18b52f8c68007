from torch.utils.data import DataLoader, Dataset


class Numbers(Dataset):
    def __init__(self, transform=None):
        self.transform = transform

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.transform(i)


if __name__ == "__main__":
    for batch in DataLoader(Numbers(transform=lambda x: x * 2), batch_size=4):
        print(batch)
