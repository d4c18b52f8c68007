# Corpus case, rewritten after Quantum-Cheese/DeepReinforcementLearning_Pytorch Actor_Critic/A3C/untils.py.
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical


class ValueNetwork(nn.Module):
    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, 256)
        self.fc2 = nn.Linear(256, output_dim)

    def forward(self, state):
        return self.fc2(F.relu(self.fc1(state)))


class ActorDiscrete(nn.Module):
    def __init__(self, state_size, action_size):
        super().__init__()
        self.fc1 = nn.Linear(state_size, 128)
        self.fc2 = nn.Linear(128, action_size)

    def forward(self, state):
        return F.softmax(self.fc2(F.relu(self.fc1(state))), dim=1)

    def act(self, state):
        m = Categorical(self.forward(state))
        action = m.sample()
        return action.item(), m.log_prob(action)


class ActorContinous(nn.Module):
    def __init__(self, state_size, action_size):
        super().__init__()
        self.fc1 = nn.Linear(state_size, 128)
        self.mu = nn.Linear(128, action_size)
        self.sigma = nn.Linear(128, action_size)

    def forward(self, state):
        x = F.relu(self.fc1(state))
        return torch.tanh(self.mu(x)), F.softplus(self.sigma(x)) + 1e-5
