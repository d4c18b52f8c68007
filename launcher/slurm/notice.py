"""SLURM's preemption notice reaches every process of a job step: only the launcher and its agent may act on it.

srun passes a signal it receives (``--signal=B:USR1@S`` reaches srun as the
batch process, ``scancel --signal=USR1 --batch`` too) to every process of the
step, not only to the task it started (measured with SLURM 22.05: a task's
child, and one in a session of its own, got it too). A process with SIGUSR1's
default action dies of it: the launcher's reaper, its worker server, a
DataLoader worker. So in a SLURM job the launcher ignores SIGUSR1 before it
starts any process; they inherit that (across exec too), the launcher and its
agent install their own handler for the save and stop, and the workers ignore
it (``launcher.bootstrap``). Never imports torch.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping

NOTICE_SIGNAL = "SIGUSR1"  # the only preemption notice the sbatch script asks for (SIGUSR2 is the agent's own)


def ignore_preemption_notice(environ: Mapping[str, str]) -> bool:
    """In a SLURM job, ignore the notice in this process and all it starts from now on; whether it did."""
    number = getattr(signal, NOTICE_SIGNAL, None)
    if "SLURM_JOB_ID" not in environ or number is None:
        return False
    signal.signal(number, signal.SIG_IGN)
    return True
