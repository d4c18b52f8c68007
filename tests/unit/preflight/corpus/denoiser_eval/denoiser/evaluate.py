# Corpus case, rewritten after facebookresearch/denoiser denoiser/evaluate.py: the model runs on the
# GPU in the parent; a ProcessPoolExecutor computes PESQ/STOI from CPU arrays (its children never
# touch CUDA). Run as `python -m denoiser.evaluate`.
import argparse
import json
import logging
import sys
from concurrent.futures import ProcessPoolExecutor

import torch
from pesq import pesq
from pystoi import stoi

from . import distrib
from .data import NoisyCleanSet
from .enhance import get_estimate, get_model

logger = logging.getLogger(__name__)

parser = argparse.ArgumentParser("denoiser.evaluate", description="Evaluate model performance")
parser.add_argument("--data_dir", help="directory including noisy.json and clean.json files")
parser.add_argument("--device", default="cuda")
parser.add_argument("--num_workers", type=int, default=10)
parser.add_argument("--no_pesq", action="store_false", dest="pesq", default=True)


def evaluate(args, model=None, data_loader=None):
    total_pesq = total_stoi = total_cnt = 0
    if not model:
        model = get_model(args).to(args.device)
    model.eval()
    if data_loader is None:
        dataset = NoisyCleanSet(args.data_dir, sample_rate=model.sample_rate)
        data_loader = distrib.loader(dataset, batch_size=1, num_workers=2)
    pendings = []
    with ProcessPoolExecutor(args.num_workers) as pool:
        with torch.no_grad():
            for i, data in enumerate(data_loader):
                noisy, clean = [x.to(args.device) for x in data]
                if args.device == "cpu":
                    pendings.append(pool.submit(_estimate_and_run_metrics, clean, model, noisy, args))
                else:
                    estimate = get_estimate(model, noisy, args).cpu()
                    pendings.append(pool.submit(_run_metrics, clean.cpu(), estimate, args, model.sample_rate))
                total_cnt += clean.shape[0]
        for pending in pendings:
            pesq_i, stoi_i = pending.result()
            total_pesq += pesq_i
            total_stoi += stoi_i
    return total_pesq / total_cnt, total_stoi / total_cnt


def _estimate_and_run_metrics(clean, model, noisy, args):
    estimate = get_estimate(model, noisy, args)
    return _run_metrics(clean, estimate, args, sr=model.sample_rate)


def _run_metrics(clean, estimate, args, sr):
    estimate = estimate.numpy()[:, 0]
    clean = clean.numpy()[:, 0]
    pesq_i = sum(pesq(sr, clean[i], estimate[i], "wb") for i in range(len(clean))) if args.pesq else 0
    stoi_i = sum(stoi(clean[i], estimate[i], sr, extended=False) for i in range(len(clean)))
    return pesq_i, stoi_i


def main():
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    pesq_score, stoi_score = evaluate(args)
    json.dump({"pesq": pesq_score, "stoi": stoi_score}, sys.stdout)


if __name__ == "__main__":
    main()
