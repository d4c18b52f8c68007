"""Last module of the forkserver's preload during the launch profile.

Marks the end of the preload and wraps ``launcher.bootstrap.run_worker`` in the
server, so that every worker forked from it marks its entry and return (the
payload names the function by reference, so the worker resolves to the wrapper).
"""

from launch_marks import mark, wrap

import launcher.bootstrap

mark("server: preload done")
wrap(launcher.bootstrap, "run_worker", "worker: run_worker")
