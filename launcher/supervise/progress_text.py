"""The words of the progress line, from one rank's metrics record and the ranks compared. Pure, no terminal.

``head`` is the step (``step 120/1000``; ``rank 4: step 120/1000`` on a node without rank 0); ``info``
what follows the bar: epoch, throughput, ETA, the user's metrics (loss first) and the straggler, e.g.
``epoch 1, 323 samples/s, ETA 1:27, loss 0.52, lr 0.1; slowest: rank 3 at 0.62x``. ``plain_line``
joins them for the lines mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from launcher.supervise.rank_compare import number


@dataclass(frozen=True)
class ProgressText:
    rank: int
    step: int
    total: int | None
    head: str  # "step 120/1000"; "rank 4: step 120/1000" for a rank other than 0
    info: str  # "epoch 1, 323 samples/s, ETA 1:27, loss 0.52; slowest: rank 3 at 0.62x"

    @property
    def fraction(self) -> float | None:
        """Share of the total done (0..1), when the total is known."""
        return min(1.0, self.step / self.total) if self.total else None


def progress_text(rank: int, record: Mapping[str, Any], world: Mapping[str, Any] | None) -> ProgressText:
    """The progress of ``rank`` (its latest record), with the straggler ``world`` names."""
    step = int(number(record, "step") or 0)
    total_value = number(record, "total_steps")
    total = int(total_value) if total_value else None
    head = (f"rank {rank}: " if rank else "") + (f"step {step}/{total}" if total else f"step {step}")
    parts = []
    epoch = number(record, "epoch")
    if epoch is not None:
        parts.append(f"epoch {int(epoch)}")
    parts.append(_throughput(record))
    eta = _eta(step, total, number(record, "steps_per_s"))
    if eta is not None:
        parts.append(f"ETA {eta}")
    parts += _user_metrics(record.get("metrics"))
    info = ", ".join(part for part in parts if part)
    straggler = straggler_text(world)
    if straggler:
        info = f"{info}; {straggler}" if info else straggler
    return ProgressText(rank, step, total, head, info)


def plain_line(text: ProgressText) -> str:
    """The lines mode: one line, no control characters."""
    done = f" ({text.fraction:.0%})" if text.fraction is not None else ""
    return f"launcher: {text.head}{done}" + (f", {text.info}" if text.info else "")


def straggler_text(world: Mapping[str, Any] | None) -> str:
    """``slowest: rank 3 at 0.62x``, ``starved: rank 2 waits 27%``, both, or nothing."""
    if world is None:
        return ""
    parts = []
    slowest = world.get("slowest")
    if isinstance(slowest, Mapping) and number(slowest, "ratio") is not None:
        parts.append(f"slowest: rank {slowest.get('rank')} at {number(slowest, 'ratio'):.2f}x")
    starved = world.get("starved")
    if isinstance(starved, Mapping) and number(starved, "data_wait") is not None:
        parts.append(f"starved: rank {starved.get('rank')} waits {number(starved, 'data_wait'):.0%}")
    return ", ".join(parts)


def duration(seconds: float) -> str:
    """``1:27``, ``1:02:03``."""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _throughput(record: Mapping[str, Any]) -> str:
    samples = number(record, "samples")
    if samples:
        rate = number(record, "samples_per_s")
        return f"{_rate(rate)} samples/s" if rate is not None else ""
    rate = number(record, "steps_per_s")
    return f"{_rate(rate)} steps/s" if rate is not None else ""


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _eta(step: int, total: int | None, steps_per_s: float | None) -> str | None:
    if not total or not steps_per_s or step >= total:
        return None
    return duration((total - step) / steps_per_s)


def _user_metrics(metrics: object) -> list[str]:
    """``loss 0.52``, then the others in the order the loop gave them."""
    if not isinstance(metrics, Mapping):
        return []
    names = sorted(metrics, key=lambda name: name != "loss")  # stable: loss first, the others as they came
    return [f"{name} {_value(metrics[name])}" for name in names]


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
