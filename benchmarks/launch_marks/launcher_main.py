"""``python launcher_main.py ARGS``: ``python -m launcher ARGS`` in-process, with timestamps around its steps.

Run by ``benchmarks/launch_profile.py`` with ``benchmarks/`` on PYTHONPATH. The
workers import this file as ``__mp_main__``: everything happens under the guard.
"""

import time

STARTED = time.time()

if __name__ == "__main__":
    import multiprocessing.util
    import sys
    from collections.abc import Mapping

    from launch_marks import mark, wrap

    mark("launcher: python up (first line)", STARTED)
    import launcher.cli
    import launcher.supervisor

    mark("launcher: launcher.cli imported")
    supervisor = launcher.supervisor
    supervisor.PRELOAD[:0] = ["launch_marks.server"]
    supervisor.PRELOAD.append("launch_marks.ready")
    wrap(launcher.cli, "_prepare", "launcher: flags, config, plan, preflight")
    wrap(launcher.cli, "report", "launcher: summary")
    wrap(supervisor, "run_plan", "launcher: run_plan")
    wrap(supervisor, "start_worker_server", "launcher: start forkserver")
    wrap(supervisor, "_run_agent", "launcher: run_agent (imports torch, elastic)")
    wrap(supervisor, "stop_worker_server", "launcher: stop forkserver")
    wrap(multiprocessing.util, "_exit_function", "launcher: multiprocessing exit function")
    quiet = supervisor.quiet_engine_logs

    def quiet_then_wrap_agent(environ: Mapping[str, str]) -> None:
        """Called right after _run_agent's torch imports: the agent class exists now."""
        mark("launcher: torch + elastic + agent imported")
        import multiprocessing.process

        import torch.distributed.elastic.agent.server.local_elastic_agent as local_agent

        from launcher.agent import LauncherAgent, RunLogsSpecs

        for name, label in (("_rendezvous", "agent: rendezvous"), ("_start_workers", "agent: start workers"),
                            ("_monitor_workers", "agent: monitor"), ("_exit_barrier", "agent: exit barrier"),
                            ("run", "agent: run")):
            wrap(LauncherAgent, name, label)
        wrap(RunLogsSpecs, "reify", "agent: log and output setup")
        wrap(local_agent, "start_processes", "agent: start_processes")
        wrap(multiprocessing.process.BaseProcess, "start", "agent: one Process.start")
        quiet(environ)

    supervisor.quiet_engine_logs = quiet_then_wrap_agent
    sys.argv = ["launcher", *sys.argv[1:]]
    launcher.cli.entry()
