"""Restarts that always work: every attempt forms its process group on a fresh store.

The sample joins a gloo group and meets in a barrier in every attempt, so an
attempt that reads the previous attempt's rendezvous keys hangs or fails with
"connectFullMesh ... Connection refused" (it did in about 1 run of 6 before
each round got its own store).
"""

from __future__ import annotations

import socket

import pytest

pytestmark = pytest.mark.timeout(600)

RUNS = 50


@pytest.mark.own_start_methods  # the loop runs in the default pass; the spawn pass runs the other restart tests
def test_a_job_that_fails_once_succeeds_in_50_runs_of_50(launcher):
    outcomes = []
    for _ in range(RUNS):
        ran = launcher(["--nprocs", 2, "--max-restarts", 2, "restart_once.py"], timeout=120)
        restarts = ran.stderr.count("restarting the workers")
        done = ran.stdout.count("attempt 1 done, sum 1")
        outcomes.append((ran.returncode, restarts, done))
    failed = [(run, outcome) for run, outcome in enumerate(outcomes) if outcome != (0, 1, 2)]
    assert not failed, f"{len(failed)} of {RUNS} runs went wrong (run, (exit code, restarts, ranks done)): {failed}"


def test_49_restarts_in_one_job_each_form_a_new_group(launcher):
    ran = launcher(["--nprocs", 2, "--max-restarts", 49, "restart_once.py", "--fail-attempts", 49], timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stderr.count("restarting the workers") == 49
    assert ran.stdout.count("attempt 49 done, sum 1") == 2


def test_a_fixed_master_port_is_kept_across_restarts(launcher, tmp_path):
    with socket.socket() as probe:  # a port that is free now; the preflight would say if it were taken
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = tmp_path / "ports.py"
    script.write_text(
        "import os, sys\n"
        "import torch.distributed as dist\n"
        "dist.init_process_group('gloo')\n"
        "dist.barrier()\n"
        "attempt = int(os.environ['TORCHELASTIC_RESTART_COUNT'])\n"
        "print('attempt', attempt, 'port', os.environ['MASTER_PORT'], flush=True)\n"
        "if attempt < 2 and dist.get_rank() == 1:\n"
        "    sys.exit(3)\n"
        "dist.barrier()\n"
        "dist.destroy_process_group()\n"
    )
    ran = launcher(["--nprocs", 2, "--max-restarts", 2, "--master-port", port, script], cwd=tmp_path, timeout=120)
    assert ran.returncode == 0, ran.stderr
    for attempt in range(3):
        assert ran.stdout.count(f"attempt {attempt} port {port}") == 2, ran.stdout
