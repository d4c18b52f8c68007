"""The line the launcher prints when it restarts the workers: who failed, who was only stopped, which restart.

Restarts are numbered as elastic numbers attempts: restart N starts the attempt whose
``TORCHELASTIC_RESTART_COUNT`` is N and whose per-rank files are in ``attempt_N``. Never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from launcher.result import RankFailure, Restart


def restart_line(restart: Restart, attempt_dir: str | None = None) -> str:
    """``rank 1 failed (exit code 3), rank 0 was stopped; restarting the workers: restart 1 of 2``."""
    if not restart.counted:  # elastic saw a node waiting to join while the ranks ran
        return "a node is waiting to join: restarting the workers to admit it, not counted as a restart"
    if restart.lost_nodes:
        causes = "; ".join(node.describe() for node in restart.lost_nodes)
        action = "restarting the workers with the nodes left"
    else:
        causes, action = failure_causes(restart.failures, restart.hung_rank), "restarting the workers"
    where = f", logs in {attempt_dir}" if attempt_dir else ""
    return f"{causes}; {action}: restart {restart.number} of {restart.max_restarts}{where}"


def failure_causes(failures: Sequence[RankFailure], hung_rank: int | None = None) -> str:
    """The ranks that failed on their own, then those that lost a peer, then those the launcher stopped."""
    parts = []
    if hung_rank is not None:
        parts.append(f"rank {hung_rank} made no progress within the hang timeout")
    own = [f for f in failures if not f.stopped_by_launcher and not f.peer_gone and f.rank != hung_rank]
    parts += [f"rank {f.rank} failed ({f.how()})" for f in own]
    peer_gone = [f for f in failures if not f.stopped_by_launcher and f.peer_gone and f.rank != hung_rank]
    if peer_gone and (own or hung_rank is not None):
        parts.append(f"{_ranks(peer_gone)} lost a peer in a collective")
    elif peer_gone:
        parts.append(f"{_ranks(peer_gone)} failed in a collective because a peer is gone: a rank of another node "
                     "failed, or the node is gone")
    stopped = [f for f in failures if f.stopped_by_launcher and f.rank != hung_rank]
    if stopped:
        parts.append(f"{_ranks(stopped)} {'was' if len(stopped) == 1 else 'were'} stopped")
    return ", ".join(parts) or "a rank failed"


def _ranks(failures: Sequence[RankFailure]) -> str:
    numbers = sorted(f.rank for f in failures)
    return f"rank{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
