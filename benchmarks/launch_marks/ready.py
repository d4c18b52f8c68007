"""Last module of the forkserver's preload during the launch profile.

Marks the end of the preload, and wraps in the server what its children run:
``launcher.bootstrap.run_worker`` (every worker marks its entry and return; the
payload names the function by reference, so the worker resolves to the
wrapper) and the agent's steps (the agent process is forked from the server too).
"""

import multiprocessing.process

import launcher.agent_host
import torch.distributed.elastic.agent.server.local_elastic_agent as local_agent
from launch_marks import mark, wrap
from launcher.agent import LauncherAgent, RunLogsSpecs

import launcher.bootstrap

mark("server: preload done")
wrap(launcher.bootstrap, "run_worker", "worker: run_worker")
wrap(launcher.agent_host, "host_agent", "agent: host_agent")
for name, label in (("_rendezvous", "agent: rendezvous"), ("_start_workers", "agent: start workers"),
                    ("_monitor_workers", "agent: monitor"), ("_exit_barrier", "agent: exit barrier"),
                    ("run", "agent: run")):
    wrap(LauncherAgent, name, label)
wrap(RunLogsSpecs, "reify", "agent: log and output setup")
wrap(local_agent, "start_processes", "agent: start_processes")
wrap(multiprocessing.process.BaseProcess, "start", "agent: one Process.start")
