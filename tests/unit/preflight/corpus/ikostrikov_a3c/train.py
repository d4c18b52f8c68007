# Corpus case, rewritten after ikostrikov/pytorch-a3c train.py (CPU only).
import torch
import torch.optim as optim
from envs import create_atari_env
from model import ActorCritic


def train(rank, args, shared_model):
    torch.manual_seed(args.seed + rank)
    env = create_atari_env(args.env_name)
    env.seed(args.seed + rank)
    model = ActorCritic(env.observation_space.shape[0], env.action_space)
    optimizer = optim.Adam(shared_model.parameters(), lr=args.lr)
    model.train()
    state = torch.from_numpy(env.reset())
    while True:
        model.load_state_dict(shared_model.state_dict())
        for _ in range(args.num_steps):
            value, logit = model(state.unsqueeze(0))
            action = logit.softmax(-1).multinomial(num_samples=1).detach()
            state, reward, done, _ = env.step(action.numpy())
            state = torch.from_numpy(env.reset() if done else state)
        loss = value.sum()
        optimizer.zero_grad()
        loss.backward()
        for param, shared_param in zip(model.parameters(), shared_model.parameters()):
            shared_param._grad = param.grad
        optimizer.step()
