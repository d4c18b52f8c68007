import torch.utils.data as tud


def main():
    loader = tud.DataLoader(
        list(range(8)),
        num_workers=2,
        multiprocessing_context="spawn",
        collate_fn=lambda b: b,  # <- pickle
    )
    return list(loader)


if __name__ == "__main__":
    main()
