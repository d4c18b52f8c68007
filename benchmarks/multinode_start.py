"""Launch-to-exit of the trivial gloo job on 2 nodes x 2 ranks (c10d rendezvous), ours vs torchrun.

The nodes are network namespaces on a bridge (``tests/multinode/netns.py``: root only), made for
this run and deleted after it. One run = the same command started on both nodes at once, timed
until both exited and every process they started is gone; ours and torchrun alternate on the same
namespaces, a new rendezvous port and id each run. Target: at most 0.5x torchrun.

Also the per-node start cost against a single-node job (the launcher's torch-preloaded server and
torch-free parent serve multi-node jobs too): CPU seconds of one node's whole process tree (the
launcher and everything it started, reaped) in the 2-node job, against the same 2-rank job on one
node (``--standalone``). Both nodes share this machine's cores, so wall time per node is not a
per-node cost here; CPU time is. Target: within 10% of the single-node job's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    LAUNCHER,
    TORCHRUN,
    JobError,
    job,
    markdown_table,
    ours_vs_anchor,
    ratio,
    run_benchmark_main,
    summary,
    verdict,
    wait_until_gone,
)
from launcher.testing import processes
from tests.multinode import netns

NAME = "multinode_start"
TARGET_VS_TORCHRUN = 0.5
TARGET_PER_NODE = 1.10
NPROCS = 2
TIMEOUT = 180.0
FIRST_PORT = 29600


@dataclass(frozen=True)
class NodesRun:
    seconds: float  # start → every command exited and every process gone
    cpu: tuple[float, ...]  # per node: user + system CPU seconds of its reaped process tree


class Runner:
    """Runs one job on some nodes (a command per node), a new port and rendezvous id each time."""

    def __init__(self, nodes: Sequence[netns.Node], scratch: str) -> None:
        self.nodes = nodes
        self.scratch = scratch
        self._count = 0

    def _next(self) -> tuple[int, str]:
        self._count += 1
        return FIRST_PORT + self._count, f"bench{self._count}"

    def run(self, commands: Sequence[list[str]], env: dict[str, str] | None = None) -> NodesRun:
        tag = processes.new_tag()
        env = {**os.environ, **(env or {}), processes.TAG_VARIABLE: tag, "TMPDIR": self.scratch}
        start = time.time()
        started = [subprocess.Popen(command, env=env, cwd=self.scratch, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                   for command in commands]
        cpu, failed = [], []
        try:
            for process, command in zip(started, commands, strict=True):
                assert process.stderr is not None
                stderr = process.stderr.read()  # until it exits: both nodes run meanwhile
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                cpu.append(usage.ru_utime + usage.ru_stime)
                if process.returncode != 0:
                    failed.append(f"{' '.join(command)} exited {process.returncode}:\n{stderr[-2000:].decode()}")
            if failed:
                raise JobError("\n".join(failed))
            gone_at = wait_until_gone(tag, timeout=TIMEOUT)
        finally:
            for process in started:
                if process.returncode is None:
                    process.kill()
                    process.wait()
            processes.kill_tagged(tag)
        return NodesRun(gone_at - start, tuple(cpu))

    def two_nodes(self, anchor: bool) -> NodesRun:
        """The trivial job on the first two nodes, the first hosting the rendezvous. Ours: the same command on
        both; torchrun needs to be told which node hosts the store, each node's address and gloo's interface."""
        port, run_id = self._next()
        host = self.nodes[0]
        commands = []
        for node in self.nodes[:2]:
            common = ["--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{host.address}:{port}",
                      "--rdzv-id", run_id]
            if anchor:
                told = ["--rdzv-conf", f"is_host={int(node is host)}", "--local-addr", node.address]
                commands.append(node.argv([*TORCHRUN, *common, "--nproc-per-node", str(NPROCS), *told,
                                           job("trivial.py")]))
            else:
                commands.append(node.argv([*LAUNCHER, *common, "--nprocs", str(NPROCS), job("trivial.py")]))
        return self.run(commands, {"GLOO_SOCKET_IFNAME": "eth0"} if anchor else None)

    def one_node(self) -> NodesRun:
        """Ours, the same job on one node alone (what a single-node launch costs)."""
        return self.run([self.nodes[0].argv([*LAUNCHER, "--standalone", "--nprocs", str(NPROCS),
                                             job("trivial.py")])])


def measure(runs: int) -> dict[str, Any]:
    network = netns.create(2)
    try:
        with tempfile.TemporaryDirectory(prefix="launcher-bench-") as scratch:
            runner = Runner(network.nodes, scratch)
            ours, anchor = ours_vs_anchor(lambda: runner.two_nodes(anchor=False),
                                          lambda: runner.two_nodes(anchor=True), runs, "2 nodes")
            two, one = ours_vs_anchor(lambda: runner.two_nodes(anchor=False), runner.one_node, runs, "per node")
    finally:
        netns.delete(network)
    wall: dict[str, Any] = {"ours": summary([r.seconds for r in ours]), "anchor": summary([r.seconds for r in anchor])}
    wall["ratio"] = ratio(wall["ours"]["median"], wall["anchor"]["median"])
    wall["met"] = wall["ratio"] <= TARGET_VS_TORCHRUN
    per_node: dict[str, Any] = {"two_nodes_cpu": summary([cpu for r in two for cpu in r.cpu]),
                "one_node_cpu": summary([r.cpu[0] for r in one]),
                "two_nodes_wall": summary([r.seconds for r in two]), "one_node_wall": summary([r.seconds for r in one])}
    per_node["ratio"] = ratio(per_node["two_nodes_cpu"]["median"], per_node["one_node_cpu"]["median"])
    per_node["met"] = per_node["ratio"] <= TARGET_PER_NODE
    return {"nprocs_per_node": NPROCS, "launch_to_exit": wall, "per_node": per_node,
            "torchrun_cpu_per_node": summary([cpu for r in anchor for cpu in r.cpu]),
            "ours_cpu_per_node": summary([cpu for r in ours for cpu in r.cpu])}


def render(data: dict[str, Any]) -> str:
    wall, node = data["launch_to_exit"], data["per_node"]
    rows = [
        [f"2 nodes x {NPROCS} ranks, launch to exit (s)", wall["ours"]["median"], wall["anchor"]["median"],
         f"{wall['ratio']:.2f}x", f"≤ {TARGET_VS_TORCHRUN}x", verdict(wall["met"])],
        ["CPU per node in that job (s)", data["ours_cpu_per_node"]["median"],
         data["torchrun_cpu_per_node"]["median"],
         f"{ratio(data['ours_cpu_per_node']['median'], data['torchrun_cpu_per_node']['median']):.2f}x", "", ""],
        [f"ours: CPU per node, 2-node job vs 1-node {NPROCS}-rank job (s)", node["two_nodes_cpu"]["median"],
         node["one_node_cpu"]["median"], f"{node['ratio']:.2f}x", f"≤ {TARGET_PER_NODE}x", verdict(node["met"])],
        ["ours: wall, 2-node job vs 1-node job (s, both nodes on these cores)", node["two_nodes_wall"]["median"],
         node["one_node_wall"]["median"],
         f"{ratio(node['two_nodes_wall']['median'], node['one_node_wall']['median']):.2f}x", "", ""],
    ]
    runs = wall["ours"]["runs"]
    head = (f"Multi-node start: medians of {runs} runs per side (first dropped, interleaved), nodes are network "
            "namespaces on one machine; the second column is torchrun, except in the last two rows (ours on one node).")
    return f"{head}\n\n{markdown_table(['case', 'ours', 'anchor', 'ratio', 'target', ''], rows)}"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run_benchmark_main(NAME, __doc__.splitlines()[0], measure, render, argv)
    except netns.NetnsUnavailable as error:
        print(f"{NAME}: needs network namespaces: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
