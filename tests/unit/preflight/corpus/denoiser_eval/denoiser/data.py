# Corpus case, rewritten after facebookresearch/denoiser denoiser/data.py.
import json
import os

import torchaudio
from torch.utils.data import Dataset


class NoisyCleanSet(Dataset):
    def __init__(self, json_dir, sample_rate=16_000):
        with open(os.path.join(json_dir, "noisy.json")) as f:
            self.noisy = json.load(f)
        with open(os.path.join(json_dir, "clean.json")) as f:
            self.clean = json.load(f)
        self.sample_rate = sample_rate

    def __len__(self):
        return len(self.noisy)

    def __getitem__(self, index):
        noisy, _ = torchaudio.load(self.noisy[index][0])
        clean, _ = torchaudio.load(self.clean[index][0])
        return noisy, clean
