"""launcher.init() returns on no rank before every rank has formed the group (gloo).

Rank 1 is frozen (SIGSTOP) as soon as it has published its gloo address; rank 0
then forms the group. When rank 0 is gloo's initiator of their connection, the
connection completes in the kernel while rank 1 is frozen: without the barrier
after init, rank 0 returns, closes the group, and rank 1, let go, reads a closed
connection ("connectFullMesh failed ... Connection closed by peer"; it failed CI
this way in a function-target test). The store is the test's own (the ranks use
it as elastic's agent store), so the test sees rank 1's address arrive and rank 0
enter the barrier.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
import torch.distributed as dist

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
RANK_KEYS = 2  # what a rank of this group sets in the store before it waits for its peers (torch 2.13)
BARRIER_KEY = "store_based_barrier_key:0"  # torch's barrier after init: the default group's ("0"), in "default_pg"

pytestmark = [pytest.mark.timeout(180), pytest.mark.own_start_methods]


def _start_rank(rank: int, port: int, run_env: dict[str, str]) -> subprocess.Popen[str]:
    env = {**run_env, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "TORCHELASTIC_USE_AGENT_STORE": "True",
           "TORCHELASTIC_RESTART_COUNT": "0", "TORCHELASTIC_RUN_ID": "group-init"}
    return subprocess.Popen([sys.executable, str(SAMPLES / "joins_and_leaves.py")], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _listening_port(process: subprocess.Popen[str]) -> int | None:
    """The rank's gloo listener (the store is the test's: the rank listens on nothing else)."""
    ports = [c.laddr.port for c in psutil.Process(process.pid).net_connections("tcp") if c.status == "LISTEN"]
    return ports[0] if ports else None


def _wait_for(condition: Callable[[], bool], *processes: subprocess.Popen[str]) -> None:
    """Poll a condition; a rank that ended meanwhile fails the test with its output (the test's timeout bounds it)."""
    while not condition():
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"rank ended early ({process.returncode}): {process.communicate()[0]}")


def _one_round(run_env: dict[str, str]) -> bool:
    """Freeze rank 1 after its address is out, let rank 0 form the group, then rank 1. Returns whether rank 0
    was gloo's initiator (the case that breaks without the barrier); either way both ranks must succeed."""
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, timeout=timedelta(seconds=60))
    rank1 = _start_rank(1, store.port, run_env)
    rank0: subprocess.Popen[str] | None = None
    try:
        # Rank 1's gloo listener is up and its two keys are in (the last its gloo address): it waits for rank 0's.
        _wait_for(lambda: store.num_keys() >= RANK_KEYS and _listening_port(rank1) is not None, rank1)
        os.kill(rank1.pid, signal.SIGSTOP)
        rank0 = _start_rank(0, store.port, run_env)
        _wait_for(lambda: _listening_port(rank0) is not None, rank0)
        # gloo's Device::isInitiator: the larger port, compared as stored (network byte order), connects.
        initiator = socket.htons(_listening_port(rank0) or 0) > socket.htons(_listening_port(rank1) or 0)
        if initiator:  # rank 0 connects (rank 1's kernel completes it) and goes on: it must wait in the barrier
            barrier = dist.PrefixStore("default_pg", store)
            _wait_for(lambda: rank0.poll() is not None or barrier.check([BARRIER_KEY]))
        os.kill(rank1.pid, signal.SIGCONT)
        outputs = [rank.communicate(timeout=60)[0] for rank in (rank0, rank1)]
        assert [rank0.returncode, rank1.returncode] == [0, 0], outputs
        assert all(output.strip().endswith("ok") for output in outputs), outputs
        return initiator
    finally:
        for process in (rank0, rank1):
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait()


def test_no_rank_leaves_init_before_every_rank_formed_the_group(run_env):
    initiated = 0
    for _ in range(20):  # until rank 0 was the initiator twice (each round: an even chance)
        initiated += _one_round(run_env)
        if initiated == 2:
            return
    pytest.fail(f"rank 0 was gloo's initiator in {initiated} of 20 rounds: the race was not arranged")
