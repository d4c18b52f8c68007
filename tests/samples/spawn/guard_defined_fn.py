from torch.utils.data import DataLoader

if __name__ == "__main__":

    def collate(batch):
        return batch

    loader = DataLoader(range(8), num_workers=2, collate_fn=collate, multiprocessing_context="spawn")  # <- pickle
    print(list(loader))
