"""Five trivial 2-rank all_reduce tests with torch's ``MultiProcessTestCase`` (``benchmarks/pytest_plugin.py``).

torch's own way: a fresh interpreter per rank and test (``_spawn_processes``), a
FileStore, ``init_process_group("gloo")``, one all_reduce, ``destroy_process_group``.
Needs ``expecttest`` (imported by ``torch.testing._internal``).
"""

import torch
import torch.distributed as dist
from torch.testing._internal.common_distributed import MultiProcessTestCase
from torch.testing._internal.common_utils import run_tests


class AllReduceTest(MultiProcessTestCase):
    @property
    def world_size(self) -> int:
        return 2

    def setUp(self) -> None:
        super().setUp()
        self._spawn_processes()

    def _all_reduce(self) -> None:
        store = dist.FileStore(self.file_name, self.world_size)
        dist.init_process_group("gloo", store=store, rank=self.rank, world_size=self.world_size)
        t = torch.ones(1)
        dist.all_reduce(t)
        assert t.item() == self.world_size
        dist.destroy_process_group()

    def test_allreduce_0(self) -> None:
        self._all_reduce()

    def test_allreduce_1(self) -> None:
        self._all_reduce()

    def test_allreduce_2(self) -> None:
        self._all_reduce()

    def test_allreduce_3(self) -> None:
        self._all_reduce()

    def test_allreduce_4(self) -> None:
        self._all_reduce()


if __name__ == "__main__":
    run_tests()
