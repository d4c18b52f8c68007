"""What the torch-preloaded server imports before it forks the agent and the workers, who all share it.

Imported by the server only (``launcher.supervise.server.PRELOAD``). The garbage collector is
off during the imports: torch creates a few hundred thousand objects, and the
full collections it would trigger over them cost the server's start tens of
milliseconds. Then ``gc.freeze()`` moves every object to the permanent
generation, as the ``gc`` documentation advises before forking: the agent and
the workers never walk them in a collection (a full one takes about 100 ms
here) nor write to their pages, which stay shared.

The server raises its soft open-files limit to the hard one (``launcher.rlimits``): it
holds a pipe per worker, and the agent it forks holds several per rank; each worker sets
the user's limit back.

On Linux the server is also a child subreaper: what a rank starts and leaves behind
(a daemon that left its group and session) is re-parented to the server, under which
the agent finds and stops it after each attempt (``descendants.py``); the server reaps
those adopted processes without the warning multiprocessing gives for an unknown child.
"""

# ruff: noqa: F401  (imported to be loaded once, in the server, and shared by every fork)

import gc
import warnings

from launcher import trace
from launcher.platforms import become_subreaper
from launcher.rlimits import raise_open_files

trace.mark("server: preload starts")
become_subreaper()
raise_open_files()
warnings.filterwarnings("ignore", message="forkserver: waitpid returned unexpected pid")  # adopted: see above
gc.disable()
try:
    import torch
    import torch.distributed
    import torch.distributed.elastic.agent.server.local_elastic_agent
    import torch.distributed.elastic.multiprocessing.api

    import launcher.bootstrap
    import launcher.compat.elastic
    import launcher.runtime.context
    import launcher.runtime.monitor
    import launcher.supervise.agent
    import launcher.supervise.agent_process
    import launcher.supervise.engine
finally:
    gc.freeze()
    gc.enable()
trace.mark("server: preload done")
