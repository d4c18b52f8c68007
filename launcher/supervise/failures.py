"""How each rank ended, in the launcher's terms: elastic's ``ProcessFailure``s → ``RankFailure``s.

The root cause is the first failure in time among the ranks that were not
stopped by the launcher; a rank's time is when it raised (its error file, see
``launcher.protocol``), else when its exit was seen. A rank the launcher
stopped that had raised its own exception before the stop began failed on
its own. Imports torch only for types.
"""

from __future__ import annotations

import signal
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from launcher.hostinfo import hostname
from launcher.protocol import RaisedError, read_error_file
from launcher.result import RankFailure
from launcher.supervise.stacks import raised_in_collective

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure


def rank_failures(
    failures: Mapping[int, ProcessFailure],
    stopped: Mapping[int, bool],
    exit_times: Mapping[int, float],
    last_lines: Mapping[int, tuple[str, ...]],
    stop_began: float | None,
) -> tuple[RankFailure, ...]:
    """Every failed rank, earliest first. ``stopped``, ``exit_times`` and ``last_lines`` are by global rank.

    A rank the launcher stopped that had raised before the launcher's stop
    signal (``stop_began``, wall clock; None: no stop) was failing on its own
    (the bootstrap exits 1 after writing its error file, and the stop caught
    it on its way out, or a moment before): it counts as a failure of its
    own, not as a consequence. Unless its exception came out of a collective
    (gloo's 'Connection closed by peer'): that is the failure of the rank it
    waited for, seen from its side, often raised before the launcher even saw
    that rank end (a segfaulted rank has no raise time to compare with). Such
    a rank may even exit before the launcher stops it: it is marked
    ``peer_gone``, and is the root cause only when no other rank failed first-hand.
    """
    raised = {rank: read_error_file(f.error_file_data) for rank, f in failures.items()}
    found = (_to_rank_failure(rank, failure, raised[rank], exit_times.get(rank), stopped[rank],
                              last_lines.get(rank, ()), stop_began)
             for rank, failure in failures.items())
    return tuple(sorted(found, key=lambda f: f.timestamp))


def _to_rank_failure(rank: int, failure: ProcessFailure, raised: RaisedError, seen_at: float | None, stopped: bool,
                     last_lines: tuple[str, ...], stop_began: float | None) -> RankFailure:
    exitcode: int | None = failure.exitcode
    signal_name = None
    if exitcode is not None and exitcode < 0:
        try:
            signal_name = signal.Signals(-exitcode).name
        except ValueError:
            signal_name = f"signal {-exitcode}"
        exitcode = None
    own = raised.time is not None and stop_began is not None and raised.time < stop_began
    peer_gone = raised_in_collective(raised.traceback or "")
    if stopped and own and not peer_gone:
        exitcode, signal_name, stopped = 1, None, False
    return RankFailure(
        rank=rank,
        local_rank=failure.local_rank,
        host=hostname(),
        pid=failure.pid,
        exitcode=exitcode,
        signal=signal_name,
        timestamp=raised.time or seen_at or float(failure.timestamp),
        stopped_by_launcher=stopped,
        peer_gone=peer_gone,
        message=raised.message,
        traceback=raised.traceback,
        last_lines=last_lines,
    )


def ended_by_the_stop(exitcode: int | None, signals_sent: Collection[int]) -> bool:
    """Whether a rank that was running when the launcher began to stop it ended of the stop: of a signal the
    launcher sent it, or with an exit code (a signal handler's, not to be told from its own). A rank that died
    of another signal (SIGKILL before the grace ran out, SIGSEGV) ended on its own and was only not reaped yet."""
    return exitcode is None or exitcode >= 0 or -exitcode in signals_sent


def process_failure(local_rank: int, pid: int, exitcode: int, error_file: str) -> ProcessFailure:
    """Elastic's record of a failed worker; an unreadable error file (a user's own, a torn one) is ignored."""
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    try:
        return ProcessFailure(local_rank=local_rank, pid=pid, exitcode=exitcode, error_file=error_file)
    except (ValueError, OSError):
        return ProcessFailure(local_rank=local_rank, pid=pid, exitcode=exitcode, error_file="")
