"""Which nodes make up a round of an elastic rendezvous, and which left or joined between two rounds.

Elastic's dynamic (c10d) rendezvous keeps the round's participants, each by address and agent pid
with its group rank, and drops a node whose keep-alive stopped; global ranks follow the group ranks
(each node's ranks are the next ``local_world_size`` numbers). This module only compares and names
them: what a node was (its address and ranks) when it left, for the restart line and the summary.
Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from launcher.result import LostNode


@dataclass(frozen=True)
class Round:
    """The nodes of one rendezvous round: ``(address, agent pid)`` → that node's global ranks."""

    nodes: Mapping[tuple[str, int], tuple[int, ...]]

    @property
    def world_size(self) -> int:
        return sum(len(ranks) for ranks in self.nodes.values())


def round_of(group_ranks: Mapping[tuple[str, int], int], local_world_sizes: Sequence[int]) -> Round:
    """The round's nodes with their global ranks, from their group ranks and each group's local world size."""
    starts = [sum(local_world_sizes[:group]) for group in range(len(local_world_sizes))]
    nodes = {}
    for node, group in group_ranks.items():
        size = local_world_sizes[group] if group < len(local_world_sizes) else 0
        first = starts[group] if group < len(starts) else 0
        nodes[node] = tuple(range(first, first + size))
    return Round(nodes)


def gone(before: Round, participants: Mapping[tuple[str, int], object]) -> tuple[LostNode, ...]:
    """The nodes of ``before`` that are no longer among ``participants`` (a later view of the rendezvous)."""
    return tuple(LostNode(address, pid, ranks) for (address, pid), ranks in sorted(before.nodes.items())
                 if (address, pid) not in participants)


def joined(before: Round, after: Round) -> tuple[str, ...]:
    """Addresses of the nodes of ``after`` that were not in ``before``."""
    return tuple(sorted(address for (address, pid) in after.nodes if (address, pid) not in before.nodes))
