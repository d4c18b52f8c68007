# Corpus case, rewritten after Quantum-Cheese/DeepReinforcementLearning_Pytorch Actor_Critic/A3C/agent_a3c.py:
# global networks moved to CUDA in the parent, then mp.Process workers started with the default (fork).
import multiprocessing as mp

import torch
import torch.optim as optim
from Actor_Critic.A3C.untils import ActorContinous, ActorDiscrete, ValueNetwork
from Actor_Critic.A3C.worker import Worker

GAMMA = 0.9
LR = 1e-4
GLOBAL_MAX_EPISODE = 5000

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


class A3C:
    def __init__(self, env, continuous, state_size, action_size):
        self.max_episode = GLOBAL_MAX_EPISODE
        self.global_episode = mp.Value("i", 0)
        self.global_epi_rew = mp.Value("d", 0)
        self.rew_queue = mp.Queue()
        self.worker_num = mp.cpu_count()

        self.global_valueNet = ValueNetwork(state_size, 1).to(device)
        self.global_valueNet.share_memory()
        if continuous:
            self.global_policyNet = ActorContinous(state_size, action_size).to(device)
        else:
            self.global_policyNet = ActorDiscrete(state_size, action_size).to(device)
        self.global_policyNet.share_memory()
        self.global_optimizer_policy = optim.Adam(self.global_policyNet.parameters(), lr=LR)
        self.global_optimizer_value = optim.Adam(self.global_valueNet.parameters(), lr=LR)

        self.workers = [Worker(env, continuous, state_size, action_size, i,
                               self.global_valueNet, self.global_optimizer_value,
                               self.global_policyNet, self.global_optimizer_policy,
                               self.global_episode, self.global_epi_rew, self.rew_queue,
                               self.max_episode, GAMMA)
                        for i in range(self.worker_num)]

    def train_worker(self):
        scores = []
        [w.start() for w in self.workers]
        while True:
            r = self.rew_queue.get()
            if r is None:
                break
            scores.append(r)
        [w.join() for w in self.workers]
        return scores
