from torch.utils.data import DataLoader, Dataset


class Numbers(Dataset):
    def __init__(self, transform=None):
        self.transform = transform

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.transform(i)


def main():
    data = Numbers(transform=lambda x: x * 2)  # <- pickle
    for batch in DataLoader(data, num_workers=4):
        print(batch)


if __name__ == "__main__":
    main()
