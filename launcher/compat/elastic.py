"""torch.distributed.elastic's private attributes that the launcher's agent reads, behind one probe.

The agent (``launcher.supervise.agent``) extends ``LocalElasticAgent`` through
its template methods (``_start_workers``, ``_monitor_workers``,
``_stop_workers``, ``_shutdown``, ``_restart_workers``) and ``DefaultLogsSpecs``
through ``_make_log_dir``/``reify``. Beyond those hooks it reads:

- the worker processes of the running group, ``MultiprocessContext._pc.processes``,
  to wait on their exits and to signal their process groups;
- the return-value queues, ``MultiprocessContext._ret_vals``, to wake as soon as
  a worker has handed back its result;
- of the dynamic (c10d) rendezvous handler: the workers' store server it keeps from round to round
  (``_shared_tcp_store_server``, ``_bootstrap_store_info``), dropped before each round
  (``renew_worker_store``), and the round's participants (``_state_holder.state.participants``),
  to tell which node left or joined (``round_nodes``), with each node's local world size as its agent
  wrote it in the round's store (``local_world_sizes``); without them, nothing is dropped or named;
- where those queues come from: elastic makes one ``SimpleQueue`` per rank and sends
  every worker all of them (2 fds per rank in each worker; the forkserver cannot pass
  more than 253, about 125 ranks). While ``shared_returns()`` is in effect, the
  ``start_processes`` the agent calls builds ``SharedReturnsContext`` instead, a
  subclass whose ``_ret_vals`` are slots of one shared pipe (``launcher.returns``),
  which elastic's own ``_start``, ``_poll`` and ``_wrap`` use as queues (``put``,
  ``empty``, ``get``).

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

import contextlib
import datetime
import functools
import multiprocessing
import signal
from collections.abc import Callable, Iterator
from typing import Any

from torch.distributed.elastic.agent.server import local_elastic_agent
from torch.distributed.elastic.agent.server.api import SimpleElasticAgent, _RoleInstanceInfo
from torch.distributed.elastic.agent.server.local_elastic_agent import LocalElasticAgent
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
from torch.distributed.elastic.multiprocessing import api as multiprocessing_api
from torch.distributed.elastic.multiprocessing.api import MultiprocessContext
from torch.distributed.elastic.rendezvous.dynamic_rendezvous import DynamicRendezvousHandler
from torch.multiprocessing.spawn import ProcessContext

from launcher import returns

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


def _unused(function: Callable[..., Any] | None, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` the code of ``function`` never mentions (all of them when it is not a function)."""
    used = set(getattr(getattr(function, "__code__", None), "co_names", ()))
    return [name for name in names if name not in used]


def _context_factory() -> dict[str, Any] | None:
    """The namespace in which the agent's ``start_processes`` finds ``MultiprocessContext``, or None."""
    start = getattr(local_elastic_agent, "start_processes", None)
    namespace = getattr(start, "__globals__", None)
    if _unused(start, ("MultiprocessContext",)) or not isinstance(namespace, dict):
        return None
    return namespace if namespace.get("MultiprocessContext") is MultiprocessContext else None


def _return_queue_problems() -> list[str]:
    """What ``shared_returns`` needs of elastic: the queues made, sent, polled and filled as it uses them."""
    problems = [] if _context_factory() is not None else ["start_processes (MultiprocessContext by name)"]
    uses: dict[str, tuple[Any, tuple[str, ...]]] = {
        "MultiprocessContext._start": (getattr(MultiprocessContext, "_start", None), ("_ret_vals",)),
        "MultiprocessContext._poll": (getattr(MultiprocessContext, "_poll", None), ("_ret_vals", "empty", "get")),
        "MultiprocessContext._close": (getattr(MultiprocessContext, "_close", None), ()),
        "multiprocessing.api._wrap": (getattr(multiprocessing_api, "_wrap", None), ("put",)),
    }
    for where, (function, names) in uses.items():
        if function is None:
            problems.append(where)
        elif missing := _unused(function, names):
            problems.append(f"{where} ({', '.join(missing)})")
    return problems


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
    problems += _return_queue_problems()
    return tuple(problems)


class SharedReturnsContext(MultiprocessContext):
    """Elastic's process context, its workers' return values on one pipe (``launcher.returns``).

    Elastic's constructor still makes a queue per rank; they are closed at once, before any
    worker starts, and the slots take their place in ``_ret_vals``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for queue in self._ret_vals.values():
            queue.close()
        self._channel = returns.ReturnChannel(multiprocessing.get_context(self.start_method))
        self._ret_vals = self._channel.slots(self.nprocs)  # type: ignore[assignment]

    def _close(self, death_sig: signal.Signals, timeout: int = 30) -> None:
        try:
            super()._close(death_sig, timeout)
        finally:
            self._channel.close()


@contextlib.contextmanager
def shared_returns() -> Iterator[None]:
    """In the block, the process contexts elastic's agent starts are ``SharedReturnsContext``s (if ``probe()``
    found nothing missing and the OS has fds to pass: ``returns.supported``; else elastic's own)."""
    namespace = _context_factory() if returns.supported() and not probe() else None
    if namespace is None:
        yield
        return
    namespace["MultiprocessContext"] = SharedReturnsContext
    try:
        yield
    finally:
        namespace["MultiprocessContext"] = MultiprocessContext


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
    """What to wait on for a value in ``queue``: a slot's shared pipe, or a ``SimpleQueue``'s read end."""
    if isinstance(queue, returns.ReturnSlot):
        return queue.channel.reader
    return queue._reader


def renew_worker_store(handler: Any) -> None:
    """Before a round of a dynamic (c10d) rendezvous: drop the workers' store server of the last round.

    Elastic's handler keeps that server (``MASTER_ADDR:MASTER_PORT``) from round to round, and torch's
    ``env://`` rendezvous adds no prefix per attempt: a re-formed group's workers would read the last
    round's keys (gloo's peer addresses) and fail with "connectFullMesh ... Connection refused". Dropped,
    it stops, and the node that gets group rank 0 serves a new one on a free port.
    """
    if isinstance(handler, DynamicRendezvousHandler) and "_shared_tcp_store_server" in vars(handler):
        handler._shared_tcp_store_server = None
        handler._bootstrap_store_info = None


def round_nodes(handler: Any, waiting: bool = False) -> dict[tuple[str, int], int] | None:
    """The nodes of a dynamic rendezvous's round as this node last synced it, ``(address, pid)`` → group rank;
    with ``waiting``, also those waiting for the next round (rank -1: a node that left the round to re-form
    is there a moment later). None for another handler (or where elastic keeps them elsewhere)."""
    state = getattr(getattr(handler, "_state_holder", None), "state", None)
    participants = getattr(state, "participants", None)
    if not isinstance(handler, DynamicRendezvousHandler) or not isinstance(participants, dict):
        return None
    nodes = {(str(node.addr), int(node.pid)): int(rank) for node, rank in participants.items()}
    if waiting:
        for node in getattr(state, "wait_list", ()):
            nodes.setdefault((str(node.addr), int(node.pid)), -1)
    return nodes


def keep_alive_interval(handler: Any) -> float:
    """Seconds between a dynamic rendezvous's heartbeats (0 for another handler)."""
    interval: Any = getattr(getattr(handler, "settings", None), "keep_alive_interval", None)
    return float(interval.total_seconds()) if isinstance(interval, datetime.timedelta) else 0.0


ROLE_INFO_KEY = "torchelastic/role_info/{}"  # what each agent writes in the round's store when ranks are assigned


def local_world_sizes(store: Any, group_world_size: int) -> list[int] | None:
    """Each node's number of workers in the round, by group rank, as the agents wrote them; None if absent
    (elastic's shortcut for identical nodes, TORCH_ELASTIC_WORKER_IDENTICAL=1, writes none)."""
    keys = [ROLE_INFO_KEY.format(group) for group in range(group_world_size)]
    try:
        if store is None or not store.check(keys):
            return None
        return [int(_RoleInstanceInfo.deserialize(raw).local_world_size) for raw in store.multi_get(keys)]
    except (RuntimeError, ValueError, AttributeError, TypeError):
        return None
