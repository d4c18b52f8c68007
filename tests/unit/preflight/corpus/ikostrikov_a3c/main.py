# Corpus case, rewritten after ikostrikov/pytorch-a3c main.py: torch.manual_seed, then Hogwild
# processes (default start method) that train a shared CPU model; targets in local modules.
import argparse

import torch
import torch.multiprocessing as mp
from envs import create_atari_env
from model import ActorCritic
from test import test
from train import train

parser = argparse.ArgumentParser(description="A3C")
parser.add_argument("--lr", type=float, default=0.0001)
parser.add_argument("--gamma", type=float, default=0.99)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--num-processes", type=int, default=4)
parser.add_argument("--num-steps", type=int, default=20)
parser.add_argument("--env-name", default="PongDeterministic-v3")


if __name__ == "__main__":
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    env = create_atari_env(args.env_name)
    shared_model = ActorCritic(env.observation_space.shape[0], env.action_space)
    shared_model.share_memory()

    processes = []
    p = mp.Process(target=test, args=(args.num_processes, args, shared_model))
    p.start()
    processes.append(p)
    for rank in range(0, args.num_processes):
        p = mp.Process(target=train, args=(rank, args, shared_model))
        p.start()
        processes.append(p)
    for p in processes:
        p.join()
