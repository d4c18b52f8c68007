"""A round's nodes and their ranks, and which nodes left or joined: what the restart line and the summary name."""

from __future__ import annotations

from launcher.result import LostNode, RunResult
from launcher.supervise.membership import Round, gone, joined, round_of


def test_ranks_follow_group_ranks_and_each_nodes_local_size() -> None:
    found = round_of({("10.0.0.2", 7): 1, ("10.0.0.1", 9): 0, ("10.0.0.3", 5): 2}, [2, 3, 1])
    assert found == Round({("10.0.0.1", 9): (0, 1), ("10.0.0.2", 7): (2, 3, 4), ("10.0.0.3", 5): (5,)})
    assert found.world_size == 6


def test_a_node_missing_from_a_later_view_left_with_its_ranks() -> None:
    before = round_of({("10.0.0.1", 9): 0, ("10.0.0.2", 7): 1}, [2, 2])
    assert gone(before, {("10.0.0.1", 9): 0}) == (LostNode("10.0.0.2", 7, (2, 3)),)
    assert gone(before, {("10.0.0.1", 9): 0, ("10.0.0.2", 7): 1}) == ()
    # the same address with another agent (a launcher started again there) is another node
    assert gone(before, {("10.0.0.1", 9): 0, ("10.0.0.2", 8): 1}) == (LostNode("10.0.0.2", 7, (2, 3)),)


def test_nodes_new_in_a_round_are_named() -> None:
    before = round_of({("10.0.0.1", 9): 0}, [2])
    after = round_of({("10.0.0.1", 9): 0, ("10.0.0.3", 4): 1}, [2, 2])
    assert joined(before, after) == ("10.0.0.3",)
    assert joined(after, after) == ()


def test_a_lost_node_fails_the_job_and_is_the_cause_rather_than_the_ranks_stopped_for_it() -> None:
    node = LostNode("10.0.0.2", 7, (2, 3))
    assert node.describe() == "node 10.0.0.2 (ranks 2, 3) left the rendezvous"
    result = RunResult(lost_nodes=(node,))
    assert not result.ok and result.exit_code == 1 and result.root_cause is None
