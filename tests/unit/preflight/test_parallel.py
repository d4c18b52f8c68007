"""The data-parallel and thread-cuda checks: DataParallel in a multi-process job, CUDA in helper threads."""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from pathlib import Path

import pytest

from launcher.preflight.checks import StaticInputs, run_static_checks
from launcher.preflight.findings import preflight_error
from launcher.preflight.parallel import (
    FIX_DATA_PARALLEL,
    FIX_THREAD_CUDA,
    data_parallel_lines,
    parallel_findings,
    thread_cuda_uses,
)

pytestmark = pytest.mark.timeout(60)

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "parallel"


def tree(source: str) -> ast.Module:
    return ast.parse(textwrap.dedent(source))


@pytest.mark.parametrize(("source", "lines"), [
    ("from torch import nn\nm = nn.DataParallel(x)\n", [2]),
    ("import torch\nm = torch.nn.DataParallel(x)\n", [2]),
    ("import torch\nm = torch.nn.parallel.DataParallel(x)\n", [2]),
    ("from torch.nn import DataParallel\nm = DataParallel(x)\n", [2]),
    ("from torch.nn import DataParallel as DP\n\n\nm = DP(x)\n", [4]),
    ("from torch.nn.parallel import DistributedDataParallel\nm = DistributedDataParallel(x)\n", []),
    ("import torch\nm = torch.nn.parallel.DistributedDataParallel(x)\nDataParallel = 3\n", []),
])  # fmt: skip
def test_data_parallel_calls_are_found_through_imports(source, lines):
    assert data_parallel_lines(tree(source)) == lines


def test_data_parallel_warns_only_with_more_than_one_process():
    source = tree("from torch import nn\nmodel = nn.DataParallel(net)\n")
    assert parallel_findings(source, "train.py", nprocs=1) == []
    (finding,) = parallel_findings(source, "train.py", nprocs=4)
    assert (finding.check, finding.status, finding.where) == ("data-parallel", "warn", "train.py:2")
    assert "each of 4 processes" in finding.message and finding.fix == FIX_DATA_PARALLEL
    assert parallel_findings(source, "train.py", nprocs=4, skip=frozenset({"data-parallel"})) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("""
     from concurrent.futures import ThreadPoolExecutor
     import torch
     def load(i):
         return torch.ones(3).cuda()
     with ThreadPoolExecutor(4) as pool:
         out = list(pool.map(load, range(3)))
     """, [(7, "load", 5, ".cuda()")]),
    ("""
     import concurrent.futures as cf
     import torch
     def warm(i):
         torch.cuda.synchronize()
     ex = cf.ThreadPoolExecutor()
     ex.submit(warm, 1)
     """, [(7, "warm", 5, "torch.cuda.synchronize")]),
    ("""
     import threading
     from torch import cuda
     def beat():
         cuda.set_device(1)
     threading.Thread(target=beat, daemon=True).start()
     """, [(6, "beat", 5, "torch.cuda.set_device")]),
    ("""
     from launcher.runtime.data.preprocess import map_in_threads
     def prep(x):
         return x.to("cuda:0")
     out = map_in_threads(prep, items)
     out2 = map_in_threads(lambda x: x.to(device="cuda"), items)
     """, [(5, "prep", 4, "a 'cuda' device"), (6, "a lambda", 6, "a 'cuda' device")]),
])  # fmt: skip
def test_cuda_in_functions_handed_to_threads_is_found(source, expected):
    found = thread_cuda_uses(tree(source))
    assert [(u.line, u.function, u.cuda_line, u.cuda) for u in found] == expected


@pytest.mark.parametrize("source", [
    # CUDA queries, CPU-only helpers, process pools, and CUDA in the training thread are all fine
    """
    import torch
    from concurrent.futures import ThreadPoolExecutor, ProcessPoolExecutor
    def query(i):
        return torch.cuda.is_available() and torch.cuda.device_count()
    def decode(i):
        return torch.ones(3) * i
    def on_gpu(i):
        return torch.ones(3).cuda()
    with ThreadPoolExecutor() as pool:
        pool.map(query, range(3)); pool.submit(decode, 1)
    with ProcessPoolExecutor() as procs:
        procs.map(on_gpu, range(3))
    def logs(i):
        print("cuda is not used here", i)
    with ThreadPoolExecutor() as pool:
        pool.submit(logs, 1)
    batch = on_gpu(0)
    other.submit(on_gpu, 1)
    """,
])  # fmt: skip
def test_cpu_work_in_threads_and_cuda_elsewhere_are_not_flagged(source):
    assert thread_cuda_uses(tree(source)) == []


def test_launcher_check_warns_about_both_without_stopping_the_launch():
    inputs = StaticInputs(platform="linux", start_method="forkserver", backend="gloo", nprocs=2, usable_cpus=2,
                          cwd=SAMPLES, script=Path("data_parallel_threads.py"))
    findings = run_static_checks(inputs)
    text = (SAMPLES / "data_parallel_threads.py").read_text().splitlines()
    marked = {f"data_parallel_threads.py:{i}" for i, line in enumerate(text, 1) if "# <- " in line}
    warned = [f for f in findings if f.check in ("data-parallel", "thread-cuda")]
    assert {f.where.rsplit("/", 1)[-1] for f in warned} == marked
    assert all(f.status == "warn" for f in warned) and preflight_error(findings) is None
    assert any(f.fix == FIX_THREAD_CUDA and "decode runs in a helper thread" in f.message for f in warned)
    single = run_static_checks(dataclasses.replace(inputs, nprocs=1))
    assert [f.check for f in single if f.status == "warn"] == ["thread-cuda"]
