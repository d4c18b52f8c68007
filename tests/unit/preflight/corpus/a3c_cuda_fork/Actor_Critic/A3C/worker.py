# Corpus case, rewritten after Quantum-Cheese/DeepReinforcementLearning_Pytorch Actor_Critic/A3C/worker.py:
# a torch.multiprocessing.Process subclass whose run() moves states to CUDA in the child.
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from Actor_Critic.A3C.untils import ActorContinous, ActorDiscrete, ValueNetwork

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


class Worker(mp.Process):
    def __init__(self, env, continuous, state_size, action_size, id, global_valueNet, global_value_optimizer,
                 global_policyNet, global_policy_optimizer, global_epi, global_epi_rew, rew_queue, max_epi, gamma):
        super().__init__()
        self.env = env
        self.name = str(id)
        self.global_valueNet, self.global_value_optimizer = global_valueNet, global_value_optimizer
        self.global_policyNet, self.global_policy_optimizer = global_policyNet, global_policy_optimizer
        self.global_epi, self.global_epi_rew = global_epi, global_epi_rew
        self.rew_queue = rew_queue
        self.max_epi = max_epi
        self.gamma = gamma
        self.memory = []
        self.local_policyNet = ActorDiscrete(state_size, action_size).to(device)
        if continuous:
            self.local_policyNet = ActorContinous(state_size, action_size).to(device)
        self.local_valueNet = ValueNetwork(state_size, 1).to(device)

    def update_global(self):
        states = torch.cat([m[0] for m in self.memory])
        rewards = torch.tensor([m[2] for m in self.memory], dtype=torch.float, device=device).view(-1, 1)
        value_loss = F.mse_loss(self.local_valueNet(states), rewards)
        self.global_value_optimizer.zero_grad()
        value_loss.backward()
        for local_params, global_params in zip(self.local_valueNet.parameters(), self.global_valueNet.parameters()):
            global_params._grad = local_params._grad
        self.global_value_optimizer.step()
        self.memory = []

    def run(self):
        while self.global_epi.value < self.max_epi:
            state = self.env.reset()
            total_reward = 0
            while True:
                state = torch.from_numpy(state).float().unsqueeze(0).to(device)
                action, prob = self.local_policyNet.act(state)
                next_state, reward, done, _ = self.env.step(action)
                self.memory.append([state, action, reward, next_state, done])
                total_reward += reward
                state = next_state
                if done:
                    with self.global_epi.get_lock():
                        self.global_epi.value += 1
                    self.rew_queue.put(total_reward)
                    break
            self.update_global()
            self.local_valueNet.load_state_dict(self.global_valueNet.state_dict())
        self.rew_queue.put(None)
