"""The random number generators of this process, as tensors and plain values, and back.

Python's ``random``, numpy's global generator (when numpy is installed) and
torch's CPU generator, and every CUDA device's once CUDA is initialised. Saved
as tensors and plain types only, so that ``torch.load(weights_only=True)``
reads them. DataLoader workers are seeded from (seed, rank, worker, epoch) by
the data pipeline and are not part of this state.

Worker side: never imports the launch side.
"""

from __future__ import annotations

import random
from typing import Any

import torch


def capture() -> dict[str, Any]:
    """Every generator's state now."""
    version, keys, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "keys": torch.tensor(keys, dtype=torch.int64), "gauss": gauss},
        "torch": torch.get_rng_state(),
    }
    numpy = _numpy()
    if numpy is not None:
        name, mt_keys, position, has_gauss, cached = numpy.random.get_state()
        state["numpy"] = {"name": str(name), "keys": torch.from_numpy(mt_keys.astype(numpy.int64)),
                          "position": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore(state: dict[str, Any]) -> list[str]:
    """Set every generator saved in ``state``; what could not be restored, in words (empty if all was)."""
    python = state["python"]
    random.setstate((python["version"], tuple(int(k) for k in python["keys"].tolist()), python["gauss"]))
    torch.set_rng_state(state["torch"])
    missed = []
    numpy = _numpy()
    if "numpy" in state and numpy is not None:
        saved = state["numpy"]
        numpy.random.set_state((saved["name"], saved["keys"].numpy().astype(numpy.uint32), saved["position"],
                                saved["has_gauss"], saved["cached_gaussian"]))
    elif "numpy" in state:
        missed.append("numpy's (numpy is not installed)")
    cuda = state.get("cuda")
    if cuda:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
            torch.cuda.set_rng_state_all(cuda)
        else:
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            missed.append(f"CUDA's (saved for {len(cuda)} device(s), this process sees {count})")
    return missed


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        return None
    return numpy
