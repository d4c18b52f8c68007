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
        *_slurm(plan),
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
    return "\n".join(lines + _ranks(plan))


def _ranks(plan: LaunchPlan) -> list[str]:
    """What every rank sees, once; then one row per rank with only what differs (its variables, its files)."""
    files = [(_per_rank(rank.stdout or "console", rank.local_rank), _per_rank(rank.stderr or "console",
                                                                             rank.local_rank)) for rank in plan.ranks]
    files_differ = len(set(files)) > 1
    envs = [{key: _per_rank(value, rank.local_rank) for key, value in rank.env.items()} for rank in plan.ranks]
    keys = sorted({key for env in envs for key in env})
    differing = [key for key in keys if any(env.get(key) != envs[0].get(key) for env in envs)]
    shared = "" if files_differ else f"stdout {files[0][0]}, stderr {files[0][1]}; "
    lines = [f"  every rank    {shared}environment:"]
    lines += [f"    {key}={envs[0][key]}" for key in keys if key not in differing]
    head = [*differing, *(("stdout", "stderr") if files_differ else ())]
    rows = []
    for rank, env, (stdout, stderr) in zip(plan.ranks, envs, files, strict=True):
        local = rank.env.get("LOCAL_RANK", str(rank.local_rank))  # as the worker sees it (one task per rank: SLURM's)
        label = f"rank {rank.rank if rank.rank is not None else '?'} (local {local})"
        rows.append([label, *(env.get(key, "-") for key in differing), *((stdout, stderr) if files_differ else ())])
    widths = [max(len(row[i]) for row in [["", *head], *rows]) for i in range(len(head) + 1)]
    lines.append(_row(["per rank".ljust(widths[0] + 2), *head], [widths[0] + 2, *widths[1:]], "  "))
    lines += [_row(row, widths, "    ") for row in rows]
    return lines


def _per_rank(value: str, local_rank: int) -> str:
    """A path in a rank's own folder, written for every rank: ``.../attempt_0/<local rank>/stdout.log``."""
    return value.replace(f"{os.sep}{local_rank}{os.sep}", f"{os.sep}<local rank>{os.sep}")


def _row(cells: list[str], widths: list[int], indent: str) -> str:
    return (indent + "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))).rstrip()


def _slurm(plan: LaunchPlan) -> list[str]:
    """SLURM's values with the variable each came from, and the mode with its reason."""
    if plan.slurm is None:
        return []
    job = plan.slurm.job
    values = (("job_id", "job id", job.job_id), ("nodes", "nodes", ",".join(job.nodes)),
              ("nnodes", "nodes (count)", job.nnodes), ("tasks_per_node", "tasks per node",
                                                         ",".join(map(str, job.tasks_per_node))),
              ("ntasks", "tasks", job.ntasks), ("node_id", "node id", job.node_id), ("proc_id", "task id", job.proc_id),
              ("local_id", "local task id", job.local_id), ("master_addr", "master_addr", job.master_addr),
              ("master_port", "master_port", job.master_port), ("gpus_per_node", "gpus per node", job.gpus_per_node),
              ("gpus_on_node", "gpus on node", job.gpus_on_node), ("gpus_per_task", "gpus per task", job.gpus_per_task),
              ("cpus_per_task", "cpus per task", job.cpus_per_task),
              ("restart_count", "restart count", job.restart_count))
    lines = [f"  slurm mode    {plan.slurm.mode}: {plan.slurm.reason}"]
    lines += [f"  slurm         {name} = {value} ({job.sources[key]})" for key, name, value in values
              if key in job.sources]
    return lines


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
    requeue = "; in a SLURM job, task 0 then requeues it (slurm.requeue)" if plan.stop.requeue_under_slurm else ""
    return (f"{plan.stop.save_signal} to the launcher: every rank checkpoints at its next maybe_save, then exit 75"
            f"{requeue}")


def _logs(plan: LaunchPlan) -> str:
    if plan.log_dir is None:
        discarded = " (the redirected streams are discarded)" if plan.output.discards else ""
        return f"console only (nothing written){discarded}"
    folder = os.path.join(plan.log_dir, run_folder_name(plan.rendezvous.run_id, None))
    metrics = ", metrics/rank_<R>.jsonl" if plan.config.monitor.enabled else ""
    return f"{folder}/ (a new folder for each run): attempt_<n>/<local rank>/{metrics}, events.jsonl"
