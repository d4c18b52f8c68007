"""The restart line names the ranks that failed as failed, the others as stopped, and numbers restarts as elastic
numbers attempts (restart N: TORCHELASTIC_RESTART_COUNT=N, folder attempt_N)."""

from __future__ import annotations

import pytest

from launcher.result import LostNode, RankFailure, Restart
from launcher.supervise.restart_line import restart_line

pytestmark = pytest.mark.timeout(30)


def _rank(rank: int, exitcode: int | None = 1, signal: str | None = None, *, stopped: bool = False,
          peer_gone: bool = False) -> RankFailure:
    return RankFailure(rank=rank, local_rank=rank, host="h", pid=100 + rank, exitcode=exitcode, signal=signal,
                       timestamp=1.0 + rank, message=None, traceback=None, stopped_by_launcher=stopped,
                       peer_gone=peer_gone)


@pytest.mark.parametrize(("failures", "hung", "expected"), [
    ((_rank(0, None, "SIGTERM", stopped=True), _rank(1, 3)), None,
     "rank 1 failed (exit code 3), rank 0 was stopped"),
    ((_rank(2, None, "SIGKILL"), _rank(0, 1, peer_gone=True), _rank(1, None, "SIGTERM", stopped=True),
      _rank(3, None, "SIGTERM", stopped=True)), None,
     "rank 2 failed (killed by SIGKILL), rank 0 lost a peer in a collective, ranks 1, 3 were stopped"),
    ((_rank(0, 1, peer_gone=True), _rank(1, 1, peer_gone=True)), None,
     "ranks 0, 1 failed in a collective because a peer is gone: a rank of another node failed, or the node is gone"),
    ((_rank(0, None, "SIGTERM", stopped=True), _rank(1, None, "SIGTERM", stopped=True)), 1,
     "rank 1 made no progress within the hang timeout, rank 0 was stopped"),
])
def test_failed_ranks_are_told_from_the_ranks_the_launcher_stopped(failures: tuple[RankFailure, ...],
                                                                   hung: int | None, expected: str) -> None:
    line = restart_line(Restart(1, 2, failures, hung_rank=hung))
    assert line == f"{expected}; restarting the workers: restart 1 of 2"


def test_the_restart_number_is_the_new_attempts_restart_count_and_folder() -> None:
    line = restart_line(Restart(2, 3, (_rank(1, 3),)), attempt_dir="runs/exp1/attempt_2")
    assert line == "rank 1 failed (exit code 3); restarting the workers: restart 2 of 3, logs in runs/exp1/attempt_2"


def test_a_node_that_left_and_a_node_that_joins() -> None:
    lost = Restart(1, 1, (_rank(0, None, "SIGTERM", stopped=True),), lost_nodes=(LostNode("10.0.0.2", 9, (2, 3)),))
    assert restart_line(lost) == ("node 10.0.0.2 (ranks 2, 3) left the rendezvous; restarting the workers with the "
                                  "nodes left: restart 1 of 1")
    joining = Restart(0, 1)
    assert not joining.counted
    assert restart_line(joining) == ("a node is waiting to join: restarting the workers to admit it, not counted as "
                                     "a restart")
