"""The plan as ``--dry-run`` prints it: what each worker runs, and every decision with its reason.

Never imports torch.
"""

from __future__ import annotations

import os
import shlex
import sys

from launcher.plan.model import CHOSEN_AT_LAUNCH, LaunchPlan, run_folder_name
from launcher.targets import FunctionTarget, ModuleTarget, ScriptTarget


def worker_command(plan: LaunchPlan) -> str:
    """What each worker runs, written as the equivalent command line."""
    target = plan.target
    args = " ".join(shlex.quote(a) for a in plan.target_args)
    if isinstance(target, ScriptTarget):
        return f"{sys.executable} {shlex.quote(target.path)} {args}".rstrip()
    if isinstance(target, ModuleTarget):
        return f"{sys.executable} -m {target.module} {args}".rstrip()
    if not isinstance(target, FunctionTarget):  # pragma: no cover - Target has three kinds
        raise TypeError(f"unknown target {target!r}")
    call_args = ", ".join(["ctx", *(repr(a) for a in plan.target_args),
                           *(f"{k}={v!r}" for k, v in plan.config.kwargs.items())])
    return f"{target.describe()}({call_args})"


def _output(plan: LaunchPlan) -> str:
    output = plan.output
    shown = "every rank" if output.console_ranks is None else "local rank(s) " + ",".join(
        map(str, sorted(output.console_ranks)))
    if output.prefix_template is not None:
        prefix = f", prefixed {output.prefix_template!r} (TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE)"
    else:
        prefix = ", prefixed [rankN]:" if output.prefixed else ", unprefixed"
    text = f"{shown} on the console{prefix}"
    if output.hidden:
        text += "; kept off it: " + ", ".join(f"{rank} {stream}" for rank, stream in sorted(output.hidden))
    return text


def render_plan(plan: LaunchPlan) -> str:
    """The plan as ``--dry-run`` prints it."""
    rdzv = plan.rendezvous
    nodes = str(rdzv.max_nodes) if rdzv.min_nodes == rdzv.max_nodes else f"{rdzv.min_nodes}:{rdzv.max_nodes}"
    hang = (f"after {plan.hang.timeout:g} s without progress ({plan.hang.startup:g} s at start-up)"
            if plan.hang is not None else "off")
    lines = [
        "launch plan",
        f"  target        {worker_command(plan)}",
        f"  cluster       {plan.cluster.kind} ({plan.cluster.description})",
        f"  nodes         {nodes}"
        f" (this node: {_node_rank(plan)}), {plan.nprocs} process(es) per node",
        f"  backend       {plan.backend} ({plan.backend_reason})",
        f"  start method  {plan.start.method}{' + torch preloaded' if plan.start.preload_torch else ''}"
        f" ({plan.start.reason})",
        f"  agent         {'in a child of the server' if plan.agent.in_server else 'in the launcher process'}"
        f" ({plan.agent.reason})",
        f"  rendezvous    {rdzv.backend} at {rdzv.endpoint}, run id {rdzv.run_id}",
        *([f"  network       {_network(plan)}"] if plan.network is not None else []),
        f"  restarts      {plan.config.world.max_restarts}",
        f"  stop          {','.join(plan.stop.signals)} forwarded; {plan.stop.grace_period:g} s grace, then SIGKILL",
        f"  save and stop {_save_and_stop(plan)}",
        f"  hang watchdog {hang}",
        f"  seed          {plan.config.seed if plan.config.seed is not None else 'not set'}",
        f"  output        {_output(plan)}",
        f"  logs          {_logs(plan)}",
        f"  limits        {_limits(plan)}",
    ]
    lines += [f"  note          {note}" for note in plan.notes]
    for rank in plan.ranks:
        lines.append(f"  rank {rank.rank if rank.rank is not None else '?'} (local {rank.local_rank})")
        lines.append(f"    stdout {rank.stdout or 'console'}, stderr {rank.stderr or 'console'}")
        lines += [f"    {key}={value}" for key, value in sorted(rank.env.items())]
    return "\n".join(lines)


def _node_rank(plan: LaunchPlan) -> str:
    rdzv = plan.rendezvous
    return str(rdzv.node_rank) if rdzv.backend == "static" or rdzv.max_nodes == 1 else CHOSEN_AT_LAUNCH


def _network(plan: LaunchPlan) -> str:
    network = plan.network
    assert network is not None  # shown only then
    chosen = ", ".join(f"{name}={value}" for name, value in sorted(network.variables.items()))
    return f"{chosen or 'interface left to gloo and NCCL'} ({network.reason})"


def _limits(plan: LaunchPlan) -> str:
    limits = plan.limits
    soft, hard = limits.open_files_soft, limits.open_files_hard
    if hard is None:
        files = ""
    elif soft is not None and soft < hard:
        files = (f" (its soft limit of {soft} raised to the hard {hard}, as the forkserver's; "
                 f"the workers keep {soft})")
    else:
        files = f" (limit {hard})"
    return f"about {limits.agent_open_files} open files in the agent{files}; at least {limits.processes} processes"


def _save_and_stop(plan: LaunchPlan) -> str:
    if plan.stop.save_signal is None:
        return "off"
    return f"{plan.stop.save_signal} to the launcher: every rank checkpoints at its next maybe_save, then exit 75"


def _logs(plan: LaunchPlan) -> str:
    if plan.log_dir is None:
        discarded = " (the redirected streams are discarded)" if plan.output.discards else ""
        return f"console only (nothing written){discarded}"
    folder = os.path.join(plan.log_dir, run_folder_name(plan.rendezvous.run_id, None))
    return f"{folder}/attempt_<n>/<local rank>/ (a new folder for each run)"
