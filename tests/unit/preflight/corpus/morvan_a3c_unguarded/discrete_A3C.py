# Corpus case, a reduction of MorvanZhou/pytorch-A3C discrete_A3C.py (no public script with this shape was
# found): the same Process subclass, but the workers are made and started at module level, with no
# __main__ guard, as notebook-style scripts do.
import os

import gym
import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from shared_adam import SharedAdam
from utils import push_and_pull, record, set_init, v_wrap

os.environ["OMP_NUM_THREADS"] = "1"

UPDATE_GLOBAL_ITER = 10
GAMMA = 0.9
MAX_EP = 4000

env = gym.make("CartPole-v0")
N_S = env.observation_space.shape[0]
N_A = env.action_space.n


class Net(nn.Module):
    def __init__(self, s_dim, a_dim):
        super().__init__()
        self.pi1 = nn.Linear(s_dim, 200)
        self.pi2 = nn.Linear(200, a_dim)
        self.v1 = nn.Linear(s_dim, 100)
        self.v2 = nn.Linear(100, 1)
        set_init([self.pi1, self.pi2, self.v1, self.v2])
        self.distribution = torch.distributions.Categorical

    def forward(self, x):
        return self.pi2(F.relu6(self.pi1(x))), self.v2(F.relu6(self.v1(x)))

    def choose_action(self, s):
        self.eval()
        logits, _ = self.forward(s)
        return self.distribution(F.softmax(logits, dim=1).data).sample().numpy()[0]


class Worker(mp.Process):
    def __init__(self, gnet, opt, global_ep, global_ep_r, res_queue, name):
        super().__init__()
        self.name = "w%i" % name
        self.g_ep, self.g_ep_r, self.res_queue = global_ep, global_ep_r, res_queue
        self.gnet, self.opt = gnet, opt
        self.lnet = Net(N_S, N_A)
        self.env = gym.make("CartPole-v0").unwrapped

    def run(self):
        total_step = 1
        while self.g_ep.value < MAX_EP:
            s = self.env.reset()
            buffer_s, buffer_a, buffer_r = [], [], []
            ep_r = 0.0
            while True:
                a = self.lnet.choose_action(v_wrap(s[None, :]))
                s_, r, done, _ = self.env.step(a)
                ep_r += r
                buffer_a.append(a)
                buffer_s.append(s)
                buffer_r.append(r)
                if total_step % UPDATE_GLOBAL_ITER == 0 or done:
                    push_and_pull(self.opt, self.lnet, self.gnet, done, s_, buffer_s, buffer_a, buffer_r, GAMMA)
                    buffer_s, buffer_a, buffer_r = [], [], []
                    if done:
                        record(self.g_ep, self.g_ep_r, ep_r, self.res_queue, self.name)
                        break
                s = s_
                total_step += 1
        self.res_queue.put(None)


gnet = Net(N_S, N_A)
gnet.share_memory()
opt = SharedAdam(gnet.parameters(), lr=0.0001)
global_ep, global_ep_r, res_queue = mp.Value("i", 0), mp.Value("d", 0.0), mp.Queue()
workers = [Worker(gnet, opt, global_ep, global_ep_r, res_queue, i) for i in range(mp.cpu_count())]
[w.start() for w in workers]
res = []
while True:
    r = res_queue.get()
    if r is None:
        break
    res.append(r)
[w.join() for w in workers]
print(len(res))
