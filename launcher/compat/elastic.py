"""torch.distributed.elastic's private attributes that the launcher's agent reads, behind one probe.

The agent (``launcher.supervise.agent``) extends ``LocalElasticAgent`` through
its template methods (``_start_workers``, ``_monitor_workers``,
``_stop_workers``, ``_shutdown``, ``_restart_workers``) and ``DefaultLogsSpecs``
through ``_make_log_dir``/``reify``. Beyond those hooks it reads:

- the worker processes of the running group, ``MultiprocessContext._pc.processes``,
  to wait on their exits and to signal their process groups;
- the return-value queues, ``MultiprocessContext._ret_vals``, to wake as soon as
  a worker has handed back its result.

``probe()`` checks all of it on the installed torch without starting anything
(the attribute names the constructors store). The agent probes when it starts:
where something is missing it keeps elastic's own monitoring and stopping (the
tested upstream path: failures are seen at the next poll, stopped with elastic's
fixed grace period, and the hang watchdog is off), and says so in one line.
The accessors below raise ``ElasticChanged`` rather than answer "no workers",
so a change that slips past the probe cannot turn a crashed worker into a group
that looks healthy for ever.

Imports torch: launch side, the agent's process only.
"""

from __future__ import annotations

import functools
from typing import Any

from torch.distributed.elastic.agent.server.api import SimpleElasticAgent
from torch.distributed.elastic.agent.server.local_elastic_agent import LocalElasticAgent
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
from torch.distributed.elastic.multiprocessing.api import MultiprocessContext
from torch.multiprocessing.spawn import ProcessContext

AGENT_HOOKS = ("_start_workers", "_monitor_workers", "_stop_workers", "_shutdown", "_restart_workers",
               "_rendezvous", "_exit_barrier")
LOGS_HOOKS = ("_make_log_dir", "reify")


class ElasticChanged(RuntimeError):
    """The installed torch no longer has an internal that the agent relies on."""


def _stored(cls: type, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` the constructor of ``cls`` does not store as ``self.<name>``."""
    code = getattr(vars(cls).get("__init__"), "__code__", None)
    stored = set(code.co_names) if code is not None else set()
    return [name for name in names if name not in stored]


@functools.cache
def probe() -> tuple[str, ...]:
    """What the agent needs and this torch lacks; empty when everything is there."""
    problems = [f"LocalElasticAgent.{name}" for name in AGENT_HOOKS if not hasattr(LocalElasticAgent, name)]
    problems += [f"LocalElasticAgent.{name}" for name in _stored(LocalElasticAgent, ("_pcontext",))]
    problems += [f"SimpleElasticAgent.{name}" for name in _stored(SimpleElasticAgent,
                                                                  ("_worker_group", "_remaining_restarts"))]
    problems += [f"DefaultLogsSpecs.{name}" for name in LOGS_HOOKS if not hasattr(DefaultLogsSpecs, name)]
    problems += [f"MultiprocessContext.{name}" for name in _stored(MultiprocessContext, ("_pc", "_ret_vals"))]
    problems += [f"ProcessContext.{name}" for name in _stored(ProcessContext, ("processes",))]
    return tuple(problems)


def worker_processes(pcontext: Any) -> list[Any]:
    """The running group's worker processes (``multiprocessing.Process``), by local rank."""
    context = getattr(pcontext, "_pc", None)
    processes = getattr(context, "processes", None)
    if processes is None:
        raise ElasticChanged("torch.distributed.elastic's process context has no worker processes (_pc.processes)")
    return list(processes)


def return_queues(pcontext: Any) -> dict[int, Any]:
    """Each worker's return-value queue, by local rank (a worker puts its value, then waits to be read)."""
    queues = getattr(pcontext, "_ret_vals", None)
    if not isinstance(queues, dict):
        raise ElasticChanged("torch.distributed.elastic's process context has no return queues (_ret_vals)")
    return queues


def queue_reader(queue: Any) -> Any:
    """What to wait on for a value in ``queue`` (a ``multiprocessing.SimpleQueue``): its read end."""
    return queue._reader
