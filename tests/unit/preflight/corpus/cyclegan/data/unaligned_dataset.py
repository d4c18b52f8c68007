# Corpus case, rewritten after junyanz/pytorch-CycleGAN-and-pix2pix data/unaligned_dataset.py: the
# transforms are built in __init__, so they travel with the dataset to each DataLoader worker.
import os
import random

from PIL import Image

from data.base_dataset import BaseDataset, get_transform


class UnalignedDataset(BaseDataset):
    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        self.dir_A = os.path.join(opt.dataroot, "trainA")
        self.dir_B = os.path.join(opt.dataroot, "trainB")
        self.A_paths = sorted(os.path.join(self.dir_A, f) for f in os.listdir(self.dir_A))
        self.B_paths = sorted(os.path.join(self.dir_B, f) for f in os.listdir(self.dir_B))
        self.transform_A = get_transform(self.opt)
        self.transform_B = get_transform(self.opt)

    def __getitem__(self, index):
        A_path = self.A_paths[index % len(self.A_paths)]
        B_path = self.B_paths[random.randint(0, len(self.B_paths) - 1)]
        A = self.transform_A(Image.open(A_path).convert("RGB"))
        B = self.transform_B(Image.open(B_path).convert("RGB"))
        return {"A": A, "B": B, "A_paths": A_path, "B_paths": B_path}

    def __len__(self):
        return max(len(self.A_paths), len(self.B_paths))
