# Corpus case, rewritten after tristandeleu/pytorch-maml-rl maml_rl/samplers/multi_task_sampler.py: the
# SamplerWorker processes (torch.multiprocessing.Process subclasses) keep env factories from make_env and
# are started in the sampler's __init__ with the default start method.
import torch
import torch.multiprocessing as mp

from maml_rl.samplers.sampler import Sampler, make_env


class MultiTaskSampler(Sampler):
    def __init__(self, env_name, env_kwargs, batch_size, policy, env=None, seed=None, num_workers=1):
        super().__init__(env_name, env_kwargs, batch_size, policy, seed=seed, env=env)
        self.num_workers = num_workers
        self.task_queue = mp.JoinableQueue()
        self.train_episodes_queue = mp.Queue()
        policy_lock = mp.Lock()
        self.workers = [SamplerWorker(index, env_name, env_kwargs, batch_size, self.policy, self.seed,
                                      self.task_queue, self.train_episodes_queue, policy_lock)
                        for index in range(num_workers)]
        for worker in self.workers:
            worker.daemon = True
            worker.start()

    def sample(self, tasks, **kwargs):
        for index, task in enumerate(tasks):
            self.task_queue.put((index, task, kwargs))
        return [self.train_episodes_queue.get() for _ in tasks]

    def close(self):
        for _ in range(self.num_workers):
            self.task_queue.put(None)
        self.task_queue.join()
        self.closed = True


class SamplerWorker(mp.Process):
    def __init__(self, index, env_name, env_kwargs, batch_size, policy, seed, task_queue, train_queue, policy_lock):
        super().__init__()
        self.env_fns = [make_env(env_name, env_kwargs=env_kwargs) for _ in range(batch_size)]
        self.seed = None if seed is None else seed + index * batch_size
        self.batch_size = batch_size
        self.policy = policy
        self.task_queue = task_queue
        self.train_queue = train_queue
        self.policy_lock = policy_lock

    def run(self):
        envs = [fn() for fn in self.env_fns]
        while True:
            data = self.task_queue.get()
            if data is None:
                self.task_queue.task_done()
                break
            index, task, kwargs = data
            with torch.no_grad():
                observations = [env.reset() for env in envs]
            self.train_queue.put((index, len(observations)))
            self.task_queue.task_done()
