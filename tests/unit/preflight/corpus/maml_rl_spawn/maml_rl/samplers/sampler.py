# Corpus case, rewritten after tristandeleu/pytorch-maml-rl maml_rl/samplers/sampler.py: make_env returns
# a function defined inside it (a closure: not picklable).
import gym


def make_env(env_name, env_kwargs={}, seed=None):
    def _make_env():
        env = gym.make(env_name, **env_kwargs)
        if hasattr(env, "seed"):
            env.seed(seed)
        return env
    return _make_env


class Sampler:
    def __init__(self, env_name, env_kwargs, batch_size, policy, seed=None, env=None):
        self.env_name = env_name
        self.env_kwargs = env_kwargs
        self.batch_size = batch_size
        self.policy = policy
        self.seed = seed
        self.env = env if env is not None else make_env(env_name, env_kwargs=env_kwargs)()
        self.env.close()
        self.closed = False

    def sample_tasks(self, num_tasks):
        return self.env.unwrapped.sample_tasks(num_tasks)
