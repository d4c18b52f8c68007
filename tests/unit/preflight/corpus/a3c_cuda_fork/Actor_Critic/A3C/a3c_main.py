# Corpus case, rewritten after Quantum-Cheese/DeepReinforcementLearning_Pytorch Actor_Critic/A3C
# (issue #3: "Cannot re-initialize CUDA in forked subprocess"): the entry script; the processes and
# CUDA live in agent_a3c.py and worker.py of the same package.
import gym
from Actor_Critic.A3C.agent_a3c import A3C


def train_agent_for_env(env_name, continuous):
    env = gym.make(env_name)
    state_dim = env.observation_space.shape[0]
    action_dim = env.action_space.shape[0] if continuous else env.action_space.n
    agent = A3C(env, continuous, state_dim, action_dim)
    scores = agent.train_worker()
    return agent, scores


if __name__ == "__main__":
    agent, scores = train_agent_for_env("CartPole-v0", False)
    print(len(scores))
