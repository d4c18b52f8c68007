# Corpus case, rewritten after pytorch/tutorials beginner_source/data_loading_tutorial.py at the commit in the
# table: a tutorial run at module level whose DataLoader has num_workers=4 and is iterated at import (no
# __main__ guard); the transforms are module-level classes.
import os

import numpy as np
import pandas as pd
import torch
from skimage import io, transform
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class FaceLandmarksDataset(Dataset):
    def __init__(self, csv_file, root_dir, transform=None):
        self.landmarks_frame = pd.read_csv(csv_file)
        self.root_dir = root_dir
        self.transform = transform

    def __len__(self):
        return len(self.landmarks_frame)

    def __getitem__(self, idx):
        img_name = os.path.join(self.root_dir, self.landmarks_frame.iloc[idx, 0])
        image = io.imread(img_name)
        landmarks = np.array([self.landmarks_frame.iloc[idx, 1:]], dtype=float).reshape(-1, 2)
        sample = {"image": image, "landmarks": landmarks}
        if self.transform:
            sample = self.transform(sample)
        return sample


class Rescale:
    def __init__(self, output_size):
        self.output_size = output_size

    def __call__(self, sample):
        image, landmarks = sample["image"], sample["landmarks"]
        h, w = image.shape[:2]
        new_h, new_w = self.output_size, self.output_size
        img = transform.resize(image, (new_h, new_w))
        return {"image": img, "landmarks": landmarks * [new_w / w, new_h / h]}


class ToTensor:
    def __call__(self, sample):
        image, landmarks = sample["image"], sample["landmarks"]
        return {"image": torch.from_numpy(image.transpose((2, 0, 1))), "landmarks": torch.from_numpy(landmarks)}


transformed_dataset = FaceLandmarksDataset(csv_file="data/faces/face_landmarks.csv", root_dir="data/faces/",
                                           transform=transforms.Compose([Rescale(256), ToTensor()]))

dataloader = DataLoader(transformed_dataset, batch_size=4, shuffle=True, num_workers=4)

for i_batch, sample_batched in enumerate(dataloader):
    print(i_batch, sample_batched["image"].size(), sample_batched["landmarks"].size())
    if i_batch == 3:
        break
