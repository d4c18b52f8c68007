"""``python launcher_main.py ARGS``: ``python -m launcher ARGS`` in-process, with timestamps around its steps.

Run by ``benchmarks/launch_profile.py`` with ``benchmarks/`` on PYTHONPATH. The
workers import this file as ``__mp_main__``: everything happens under the guard.
"""

import time

STARTED = time.time()

if __name__ == "__main__":
    import multiprocessing.util
    import sys

    from launch_marks import mark, wrap

    mark("launcher: python up (first line)", STARTED)
    import launcher.agent_host
    import launcher.supervisor

    import launcher.cli

    mark("launcher: launcher.cli imported")
    supervisor = launcher.supervisor
    supervisor.PRELOAD[:0] = ["launch_marks.server"]
    supervisor.PRELOAD.append("launch_marks.ready")
    wrap(launcher.cli, "_prepare", "launcher: flags, config, plan, preflight")
    wrap(launcher.cli, "report", "launcher: summary")
    wrap(supervisor, "run_plan", "launcher: run_plan")
    wrap(supervisor, "start_worker_server_early", "launcher: start forkserver")
    wrap(launcher.agent_host, "run_in_server", "launcher: agent process")
    wrap(supervisor, "stop_worker_server", "launcher: stop forkserver")
    wrap(multiprocessing.util, "_exit_function", "launcher: multiprocessing exit function")
    sys.argv = ["launcher", *sys.argv[1:]]
    launcher.cli.entry()
