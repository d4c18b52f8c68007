# Corpus case, rewritten after facebookresearch/denoiser denoiser/enhance.py (the parts evaluate uses).
import torch


class Demucs(torch.nn.Module):
    sample_rate = 16_000

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 1, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def get_model(args):
    return Demucs()


def get_estimate(model, noisy, args):
    with torch.no_grad():
        return model(noisy)
