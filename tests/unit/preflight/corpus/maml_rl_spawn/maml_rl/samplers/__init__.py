from maml_rl.samplers.multi_task_sampler import MultiTaskSampler
from maml_rl.samplers.sampler import Sampler

__all__ = ["MultiTaskSampler", "Sampler"]
