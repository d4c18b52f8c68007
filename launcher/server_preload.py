"""What the torch-preloaded server imports before it forks the agent and the workers, who all share it.

Imported by the server only (``supervisor.PRELOAD``). The garbage collector is
off during the imports: torch creates a few hundred thousand objects, and the
full collections it would trigger over them cost the server's start tens of
milliseconds. Then ``gc.freeze()`` moves every object to the permanent
generation, as the ``gc`` documentation advises before forking: the agent and
the workers never walk them in a collection (a full one takes about 100 ms
here) nor write to their pages, which stay shared.
"""

# ruff: noqa: F401  (imported to be loaded once, in the server, and shared by every fork)

import gc

gc.disable()
try:
    import torch
    import torch.distributed
    import torch.distributed.elastic.agent.server.local_elastic_agent
    import torch.distributed.elastic.multiprocessing.api

    import launcher.agent
    import launcher.agent_host
    import launcher.bootstrap
    import launcher.engine
    import launcher.runtime.context
finally:
    gc.freeze()
    gc.enable()
