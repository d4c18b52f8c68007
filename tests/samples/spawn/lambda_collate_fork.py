from torch.utils.data import DataLoader


def main():
    loader = DataLoader(list(range(8)), batch_size=2, num_workers=2, collate_fn=lambda b: b)  # <- pickle
    for batch in loader:
        print(batch)


if __name__ == "__main__":
    main()
