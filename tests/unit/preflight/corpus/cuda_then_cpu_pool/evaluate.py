# Corpus case, a reduction of facebookresearch/denoiser denoiser/evaluate.py: the model runs on the GPU in
# the parent, then a multiprocessing.Pool (forked on Linux) scores the CPU copies of the outputs; the pool's
# children never touch CUDA, which PyTorch allows.
import argparse
import multiprocessing

import numpy as np
import torch


def score(pair):
    clean, estimate = pair
    noise = clean - estimate
    return float(10 * np.log10((clean ** 2).sum() / max((noise ** 2).sum(), 1e-12)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_workers", type=int, default=8)
    parser.add_argument("--batches", type=int, default=64)
    args = parser.parse_args()
    model = torch.nn.Conv1d(1, 1, 3, padding=1).cuda()
    model.eval()
    pairs = []
    with torch.no_grad():
        for _ in range(args.batches):
            noisy = torch.randn(4, 1, 16000).cuda()
            clean = noisy * 0.9
            pairs.append((clean.cpu().numpy(), model(noisy).cpu().numpy()))
    with multiprocessing.Pool(args.num_workers) as pool:
        scores = pool.map(score, pairs)
    print(f"mean SNR {np.mean(scores):.2f} dB")


if __name__ == "__main__":
    main()
