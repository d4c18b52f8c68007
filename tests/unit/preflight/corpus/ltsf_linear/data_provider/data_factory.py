# Corpus case, rewritten after cure-lab/LTSF-Linear data_provider/data_factory.py.
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset


class Dataset_Custom(Dataset):
    def __init__(self, root_path, data_path, flag="train", size=(96, 96)):
        self.seq_len, self.pred_len = size
        frame = pd.read_csv(root_path + data_path)
        self.data = torch.tensor(frame.iloc[:, -1].values)

    def __len__(self):
        return len(self.data) - self.seq_len - self.pred_len + 1

    def __getitem__(self, index):
        s_end = index + self.seq_len
        return self.data[index:s_end], self.data[s_end:s_end + self.pred_len]


def data_provider(args, flag):
    shuffle_flag = flag == "train"
    data_set = Dataset_Custom(root_path=args.root_path, data_path=args.data_path, flag=flag,
                              size=[args.seq_len, args.pred_len])
    print(flag, len(data_set))
    data_loader = DataLoader(data_set, batch_size=args.batch_size, shuffle=shuffle_flag,
                             num_workers=args.num_workers, drop_last=True)
    return data_set, data_loader
