"""Many local ranks through the Python API; each returns its rank, the fds it holds, and its fd limit.

Run as ``python many_ranks.py NPROCS START_METHOD``: prints the return values as JSON,
``{rank: [rank, {"fifo": n, "pipe": n, "all": n}, soft RLIMIT_NOFILE]}``. gloo connects lazily
(TORCH_GLOO_LAZY_INIT): a full mesh of hundreds of ranks would take minutes here, and would
hold a socket per peer in each rank.
"""

import json
import os
import resource
import sys


def rank_and_fds(ctx):
    kinds = {"fifo": 0, "pipe": 0, "all": 0}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own fd, closed by now
            continue
        kinds["all"] += 1
        if target.removesuffix(" (deleted)").endswith(".pipe"):  # an output FIFO (PIPE_NAMES), removed once opened
            kinds["fifo"] += 1
        elif target.startswith("pipe:"):
            kinds["pipe"] += 1
    return ctx.rank, kinds, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


if __name__ == "__main__":
    import many_ranks

    import launcher
    from launcher.schema import JobConfig, WorldSettings

    nprocs, start_method = int(sys.argv[1]), sys.argv[2]
    config = JobConfig(world=WorldSettings(start_method=start_method), env={"TORCH_GLOO_LAZY_INIT": "1"})
    result = launcher.launch(many_ranks.rank_and_fds, nprocs=nprocs, config=config)
    print(json.dumps(result.return_values))
