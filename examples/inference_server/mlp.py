"""The served model: an MLP whose weights come from a seed, so that a client can check every answer.

The same ``ModelSpec`` always builds the same weights (a private ``torch.Generator``,
not the global RNG, so that worker threads building their copies at once do not
disturb each other or the caller's random state).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """Sizes and seed of the MLP: ``layers`` hidden layers of ``hidden`` units, ReLU, ``outputs`` logits."""

    input_size: int = 256
    hidden: int = 2048
    layers: int = 3
    outputs: int = 10
    seed: int = 0


def build_model(spec: ModelSpec) -> nn.Sequential:
    """The MLP of ``spec`` on the CPU, in eval mode, with weights drawn from ``spec.seed``."""
    sizes = [spec.input_size, *[spec.hidden] * spec.layers]
    modules: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        modules += [nn.Linear(fan_in, fan_out, device="meta"), nn.ReLU()]
    # Built on the meta device, then filled: nn.Linear's own init would draw from the global RNG.
    model = nn.Sequential(*modules, nn.Linear(sizes[-1], spec.outputs, device="meta")).to_empty(device="cpu")
    generator = torch.Generator().manual_seed(spec.seed)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                bound = 1 / math.sqrt(layer.in_features)  # nn.Linear's own init range
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
    return model.eval()
