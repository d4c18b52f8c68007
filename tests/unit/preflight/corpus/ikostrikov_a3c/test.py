# Corpus case, rewritten after ikostrikov/pytorch-a3c test.py (CPU only; not a pytest file).
import time

import torch
from envs import create_atari_env
from model import ActorCritic


def test(rank, args, shared_model):
    torch.manual_seed(args.seed + rank)
    env = create_atari_env(args.env_name)
    model = ActorCritic(env.observation_space.shape[0], env.action_space)
    model.eval()
    while True:
        model.load_state_dict(shared_model.state_dict())
        state, done, reward_sum = torch.from_numpy(env.reset()), False, 0
        while not done:
            with torch.no_grad():
                _, logit = model(state.unsqueeze(0))
            state, reward, done, _ = env.step(logit.argmax(1).numpy())
            state = torch.from_numpy(state)
            reward_sum += reward
        print(f"episode reward {reward_sum}")
        time.sleep(60)
