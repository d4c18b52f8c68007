"""The resumable distributed sampler: coverage, disjointness, epochs, eval mode and resume.

Ranks are simulated by building one sampler per rank in this process.
"""

from __future__ import annotations

from collections import Counter

import pytest
from torch.utils.data import DistributedSampler

from launcher.runtime.data.sampling import ResumableDistributedSampler, epoch_permutation

pytestmark = pytest.mark.timeout(60)

N = 11  # not divisible by 2, 3 or 4
WORLD_SIZES = [1, 2, 3, 4]


def shards(world: int, *, epoch: int = 0, seed: int = 7, **kwargs: object) -> list[list[int]]:
    out = []
    for rank in range(world):
        sampler = ResumableDistributedSampler(range(N), num_replicas=world, rank=rank, seed=seed, **kwargs)  # type: ignore[arg-type]
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


@pytest.mark.parametrize("world", WORLD_SIZES)
def test_pad_covers_dataset_with_only_the_documented_repeats(world: int) -> None:
    parts = shards(world, even_shards="pad")
    counts = Counter(i for part in parts for i in part)
    assert set(counts) == set(range(N))
    assert sum(counts.values()) - N == -N % world  # the padding, nothing more
    assert len({len(p) for p in parts}) == 1  # every rank the same length


@pytest.mark.parametrize("world", WORLD_SIZES)
def test_drop_is_disjoint_and_even(world: int) -> None:
    parts = shards(world, even_shards="drop")
    flat = [i for part in parts for i in part]
    assert len(flat) == len(set(flat)) == N - N % world
    assert len({len(p) for p in parts}) == 1


@pytest.mark.parametrize("world", WORLD_SIZES)
@pytest.mark.parametrize("even_shards", ["pad", "drop"])
def test_same_indices_as_torch_distributed_sampler(world: int, even_shards: str) -> None:
    for rank in range(world):
        ours = ResumableDistributedSampler(
            range(N), num_replicas=world, rank=rank, seed=3, even_shards=even_shards
        )  # type: ignore[arg-type]
        theirs = DistributedSampler(
            range(N), num_replicas=world, rank=rank, seed=3, drop_last=even_shards == "drop"
        )  # type: ignore[arg-type]
        for epoch in (0, 1):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs)
            assert len(ours) == len(list(theirs))


@pytest.mark.parametrize("world", WORLD_SIZES)
def test_orders_differ_between_epochs_and_agree_across_runs_and_ranks(world: int) -> None:
    first = shards(world, epoch=0)
    assert shards(world, epoch=0) == first  # a second run
    assert shards(world, epoch=1) != first
    # Every rank used the same permutation: dealing it out round-robin gives the shards.
    perm = epoch_permutation(N, seed=7, epoch=0, shuffle=True)
    padded = perm + perm[: -N % world]
    assert [padded[r::world] for r in range(world)] == first


@pytest.mark.parametrize("world", WORLD_SIZES)
def test_eval_sees_each_sample_exactly_once(world: int) -> None:
    parts = shards(world, eval=True)
    flat = sorted(i for part in parts for i in part)
    assert flat == list(range(N))
    for rank in range(world):
        sampler = ResumableDistributedSampler(range(N), num_replicas=world, rank=rank, eval=True)  # type: ignore[arg-type]
        assert len(sampler) == len(parts[rank])


def consume(sampler: ResumableDistributedSampler, k: int) -> list[int]:
    taken = list(sampler)[:k]
    sampler.set_consumed(k)
    return taken


@pytest.mark.parametrize("world", WORLD_SIZES)
@pytest.mark.parametrize("even_shards", ["pad", "drop"])
def test_resume_same_world_size_continues_exactly(world: int, even_shards: str) -> None:
    full = shards(world, epoch=2, even_shards=even_shards)
    for k in range(len(full[0]) + 1):
        for rank in range(world):
            before = ResumableDistributedSampler(
                range(N), num_replicas=world, rank=rank, seed=7, even_shards=even_shards
            )  # type: ignore[arg-type]
            before.set_epoch(2)
            consume(before, k)
            after = ResumableDistributedSampler(
                range(N), num_replicas=world, rank=rank, seed=7, even_shards=even_shards
            )  # type: ignore[arg-type]
            after.load_state_dict(before.state_dict())
            assert after.epoch == 2
            assert len(after) == len(full[rank]) - k
            assert list(after) == full[rank][k:]
            assert list(after) == full[rank]  # the resume applies to one pass only


@pytest.mark.parametrize("old", WORLD_SIZES)
@pytest.mark.parametrize("new", WORLD_SIZES)
def test_resume_other_world_size_has_no_repeats_or_gaps(old: int, new: int) -> None:
    k = 2  # samples each old rank consumed
    seen: list[int] = []
    state = None
    for rank in range(old):
        s = ResumableDistributedSampler(range(N), num_replicas=old, rank=rank, seed=7, even_shards="drop")  # type: ignore[arg-type]
        seen += consume(s, k)
        state = s.state_dict()
    assert state is not None and state["samples_consumed"] == k * old
    for rank in range(new):
        s = ResumableDistributedSampler(range(N), num_replicas=new, rank=rank, seed=7, even_shards="drop")  # type: ignore[arg-type]
        s.load_state_dict(state)
        seen += list(s)
    assert len(seen) == len(set(seen))  # no repeats
    remaining = N - k * old
    assert len(seen) == k * old + remaining - remaining % new  # no gaps beyond the documented drop


def test_resume_other_world_size_with_padding_sees_every_sample() -> None:
    state = None
    seen: list[int] = []
    for rank in range(3):
        s = ResumableDistributedSampler(range(N), num_replicas=3, rank=rank, seed=1)  # type: ignore[arg-type]
        seen += consume(s, 2)
        state = s.state_dict()
    assert state is not None
    rest: list[int] = []
    for rank in range(2):
        s = ResumableDistributedSampler(range(N), num_replicas=2, rank=rank, seed=1)  # type: ignore[arg-type]
        s.load_state_dict(state)
        rest += list(s)
    counts = Counter(seen + rest)
    assert set(counts) == set(range(N))
    assert sum(counts.values()) - N == -(N - 6) % 2  # the new world's padding only


def test_a_new_epoch_drops_a_pending_resume() -> None:
    s = ResumableDistributedSampler(range(N), num_replicas=2, rank=0, seed=1)  # type: ignore[arg-type]
    s.load_state_dict({"epoch": 0, "samples_consumed": 4, "dataset_length": N, "world_size": 2})
    s.set_epoch(1)
    expected = ResumableDistributedSampler(range(N), num_replicas=2, rank=0, seed=1)  # type: ignore[arg-type]
    expected.set_epoch(1)
    assert list(s) == list(expected)


def test_loading_a_position_for_another_dataset_fails() -> None:
    s = ResumableDistributedSampler(range(N), num_replicas=2, rank=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="12 samples"):
        s.load_state_dict({"epoch": 0, "samples_consumed": 4, "dataset_length": 12, "world_size": 2})
