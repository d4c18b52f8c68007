# Corpus case, rewritten after tristandeleu/pytorch-maml-rl train.py (issue #51: "Can't pickle local object
# 'make_env.<locals>._make_env'" once the start method is spawn): the sampler's worker processes are
# Process subclasses that hold environment factories made by a local function.
import json
import os

import torch
import yaml
from maml_rl.samplers import MultiTaskSampler


def main(args):
    with open(args.config) as f:
        config = yaml.load(f, Loader=yaml.FullLoader)
    if args.output_folder is not None:
        os.makedirs(args.output_folder, exist_ok=True)
        with open(os.path.join(args.output_folder, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    policy = torch.nn.Linear(4, 2)
    policy.share_memory()
    sampler = MultiTaskSampler(config["env-name"], env_kwargs=config.get("env-kwargs", {}),
                               batch_size=config["fast-batch-size"], policy=policy, seed=args.seed,
                               num_workers=args.num_workers)
    for batch in range(config["num-batches"]):
        tasks = sampler.sample_tasks(num_tasks=config["meta-batch-size"])
        sampler.sample(tasks, num_steps=config["num-steps"], device=args.device)
    sampler.close()


if __name__ == "__main__":
    import argparse
    import multiprocessing as mp

    parser = argparse.ArgumentParser(description="Reinforcement learning with Model-Agnostic Meta-Learning (MAML)")
    parser.add_argument("--config", type=str, required=True)
    parser.add_argument("--output-folder", type=str)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--num-workers", type=int, default=mp.cpu_count() - 1)
    parser.add_argument("--use-cuda", action="store_true")
    args = parser.parse_args()
    args.device = "cuda" if (torch.cuda.is_available() and args.use_cuda) else "cpu"
    main(args)
