"""SLURM's preemption notice reaches every process of a step: the launcher ignores it before starting any."""

from __future__ import annotations

import signal

from launcher.slurm.notice import ignore_preemption_notice


def test_in_a_slurm_job_the_notice_is_ignored_by_everything_started_from_here() -> None:
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        assert not ignore_preemption_notice({})
        assert signal.getsignal(signal.SIGUSR1) == previous
        assert ignore_preemption_notice({"SLURM_JOB_ID": "1"})
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGUSR1, previous)
