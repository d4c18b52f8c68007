"""The idioms real training scripts use, each as a small source snippet: what the checks report.

Each test writes a script (and the modules it imports) to a temporary project folder,
runs one check as on Linux (fork is Python's default there before 3.14) or as spawn,
and compares (status, file:line) pairs.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from launcher.platforms import default_mp_start_method
from launcher.preflight.findings import Finding
from launcher.preflight.source import check_cuda_fork, check_lambdas, check_main_guard

pytestmark = pytest.mark.timeout(60)

Check = Callable[..., list[Finding]]
FORK_DEFAULT = default_mp_start_method("linux") == "fork"
needs_fork_default = pytest.mark.skipif(not FORK_DEFAULT, reason="Python's Linux default is not fork here")


def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> Path:
    """Write the files (``train.py`` first), work from the folder; the target's path."""
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.chdir(tmp_path)
    return tmp_path / next(iter(files))


def problems(check: Check, target: Path, *, as_method: str | None = None) -> set[tuple[str, str]]:
    findings = check(target, as_method or "forkserver", "linux", as_method)
    return {(f.status, f.where) for f in findings if f.status != "pass"}


# -- lambdas kept in a value bound to a name -------------------------------------------------------
COMPOSE = """\
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    tfm = transforms.Compose([transforms.ToTensor(), transforms.Lambda(lambda x: x - 0.5)])
    order = sorted([3, 1, 2], key=lambda v: -v)

    def main():
        ds = datasets.MNIST("data", transform=tfm)
        loader = DataLoader(ds, batch_size=64, num_workers=2)
        for batch in loader:
            pass

    if __name__ == "__main__":
        main()
    """


def test_a_lambda_inside_a_bound_transform_is_followed_to_the_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = project(tmp_path, monkeypatch, {"train.py": COMPOSE})
    assert problems(check_lambdas, target, as_method="spawn") == {("fail", "train.py:4")}
    findings = check_lambdas(target, "spawn", "linux", "spawn")
    assert "lambda at train.py:4 (transform, given at train.py:8)" in findings[0].message
    if FORK_DEFAULT:
        assert problems(check_lambdas, target) == {("warn", "train.py:4")}


def test_a_dataset_built_with_a_kept_lambda_positionally_is_charged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = """\
        from torch.utils.data import DataLoader, Dataset
        from functools import partial

        class Images(Dataset):
            def __init__(self, root, transform):
                self.transform = transform

        def main():
            def scale(x, k):
                return x * k
            ds = Images("data", partial(scale, k=2))
            for batch in DataLoader(ds, num_workers=4):
                pass
        """
    target = project(tmp_path, monkeypatch, {"train.py": source})
    (finding,) = [f for f in check_lambdas(target, "spawn", "linux", "spawn") if f.status != "pass"]
    assert finding.where == "train.py:11" and "local function main.<locals>.scale" in finding.message


def test_a_class_that_stores_a_lambda_on_self_is_unpicklable_where_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = """\
        from torch.utils.data import DataLoader

        class Collate:
            def __init__(self):
                self.pad = lambda b: b

        loader = DataLoader(range(8), collate_fn=Collate(), num_workers=2)
        """
    target = project(tmp_path, monkeypatch, {"train.py": source})
    assert problems(check_lambdas, target, as_method="spawn") == {("fail", "train.py:5")}


# -- num_workers through **kwargs -------------------------------------------------------------------
KWARGS = """\
    import argparse
    from torch.utils.data import DataLoader

    def main(args):
        train_kwargs = {"batch_size": 64}
        cuda_kwargs = {"num_workers": 1, "pin_memory": True}
        train_kwargs.update(cuda_kwargs)
        test_kwargs = dict(batch_size=8)
        arg_kwargs = vars(args)
        a = DataLoader(range(8), collate_fn=lambda b: b, **train_kwargs)
        b = DataLoader(range(8), collate_fn=lambda b: b, **test_kwargs)
        c = DataLoader(range(8), collate_fn=lambda b: b, **arg_kwargs)
    """


def test_num_workers_is_read_through_kwargs_dicts_built_in_the_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = project(tmp_path, monkeypatch, {"train.py": KWARGS})
    # a: num_workers=1 via update (certain); b: no workers; c: vars(args) cannot be read (maybe)
    assert problems(check_lambdas, target, as_method="spawn") == {
        ("fail", "train.py:10"), ("warn", "train.py:12"),
    }  # fmt: skip


def test_a_literal_kwargs_dict_and_item_assignment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = """\
        from torch.utils.data import DataLoader
        kw = {"batch_size": 4, **{"shuffle": True}}
        kw["num_workers"] = 2
        for x in DataLoader(range(8), **kw):
            pass
        """
    target = project(tmp_path, monkeypatch, {"train.py": source})
    assert problems(check_main_guard, target, as_method="spawn") == {("fail", "train.py:4")}


# -- loaders that are not DataLoader, Process subclasses ---------------------------------------------
def test_loader_look_alikes_and_subclasses_start_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = """\
        from torch.utils.data import DataLoader
        from torch_geometric.loader import NeighborLoader

        class Prefetching(DataLoader):
            pass

        graph = NeighborLoader(data, num_neighbors=[10], num_workers=6)
        for batch in graph:
            pass
        for batch in Prefetching(range(8), num_workers=2):
            pass
        for batch in NeighborLoader(data, num_neighbors=[10]):
            pass
        """
    target = project(tmp_path, monkeypatch, {"train.py": source})
    assert problems(check_main_guard, target, as_method="spawn") == {("fail", "train.py:8"), ("fail", "train.py:10")}


def test_a_process_subclass_started_at_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = """\
        import multiprocessing as mp
        import torch.multiprocessing as tmp

        class Reader(mp.Process):
            def run(self):
                pass

        class Writer(tmp.get_context("spawn").Process):
            def run(self):
                pass

        r = Reader()
        r.start()
        w = Writer()
        w.start()
        """
    target = project(tmp_path, monkeypatch, {"train.py": source})
    expected = {("warn" if FORK_DEFAULT else "fail", "train.py:12"), ("fail", "train.py:14")}
    assert problems(check_main_guard, target) == expected
    assert problems(check_main_guard, target, as_method="spawn") == {("fail", "train.py:12"), ("fail", "train.py:14")}


# -- local imports ------------------------------------------------------------------------------------
DATA_MODULE = """\
    from torch.utils.data import DataLoader

    def make_loaders(ds):
        return DataLoader(ds, num_workers=4, collate_fn=lambda b: b)
    """


@pytest.mark.parametrize(
    ("files", "where"),
    [
        ({"train.py": "from data import make_loaders\n", "data.py": DATA_MODULE}, "data.py:4"),
        ({"train.py": "import utils.data\n", "utils/__init__.py": "", "utils/data.py": DATA_MODULE},
         "utils/data.py:4"),
        ({"pkg/train.py": "from .data import make_loaders\n", "pkg/__init__.py": "", "pkg/data.py": DATA_MODULE},
         "pkg/data.py:4"),
        ({"pkg/train.py": "from pkg.loaders import make_loaders\n", "pkg/__init__.py": "",
          "pkg/loaders/__init__.py": "from .data import make_loaders\n", "pkg/loaders/data.py": DATA_MODULE},
         "pkg/loaders/data.py:4"),
    ],
)
def test_local_imports_are_followed_and_reported_where_the_mistake_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], where: str
) -> None:
    target = project(tmp_path, monkeypatch, files)
    assert problems(check_lambdas, target, as_method="spawn") == {("fail", where)}


def test_imports_stop_at_the_depth_bound_and_never_leave_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = {"train.py": "import m1\nimport os\nimport torch\n"}
    chain |= {f"m{i}.py": f"import m{i + 1}\n" for i in range(1, 4)}
    chain["m4.py"] = DATA_MODULE
    target = project(tmp_path, monkeypatch, chain)
    assert problems(check_lambdas, target, as_method="spawn") == set()  # m4 is 4 imports away
    (tmp_path / "m3.py").write_text(textwrap.dedent(DATA_MODULE))
    assert problems(check_lambdas, target, as_method="spawn") == {("fail", "m3.py:4")}


# -- CUDA and fork ----------------------------------------------------------------------------------------
def cuda_script(before: str, child: str) -> str:
    return f"""\
import multiprocessing as mp
import torch

def work(model):
    {child}

def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = torch.nn.Linear(2, 2)
    {before}
    p = mp.Process(target=work, args=(None,))
    p.start()

if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize(
    ("before", "child", "expected"),
    [
        ("torch.cuda.manual_seed_all(0)", "torch.ones(1).cuda()", "pass"),
        ("torch.cuda.empty_cache(); torch.cuda.memory_allocated()", "torch.ones(1).cuda()", "pass"),
        ("model.to(device)", "print(model)", "pass"),  # CUDA in the parent only: PyTorch allows it
        ("model.to(device)", "torch.ones(1, device='cuda')", "fail"),
        ("torch.cuda.set_device(0)", "model.to(torch.device('cuda:0'))", "fail"),
        ("torch.device('cuda')", "model.to(torch.device('cuda:0'))", "pass"),  # torch.device alone: no init
        ("x = torch.zeros(1, device=device)", "torch.cuda.synchronize()", "fail"),
    ],
)
@needs_fork_default
def test_cuda_before_a_fork_fails_only_when_the_child_uses_cuda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: str, child: str, expected: str
) -> None:
    target = project(tmp_path, monkeypatch, {"train.py": cuda_script(before, child)})
    found = problems(check_cuda_fork, target)
    assert found == (set() if expected == "pass" else {(expected, "train.py:11")}), found


@needs_fork_default
def test_cuda_before_a_fork_of_code_it_cannot_read_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = cuda_script("model.to(device)", "pass").replace("target=work", "target=model.forward")
    target = project(tmp_path, monkeypatch, {"train.py": source})
    (finding,) = check_cuda_fork(target, "forkserver", "linux")
    assert (finding.status, finding.where) == ("warn", "train.py:11")
    assert "safe only while the children never use CUDA" in finding.message


@needs_fork_default
def test_a_child_given_a_cuda_model_uses_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = cuda_script("model = model.to(device)", "pass").replace("args=(None,)", "args=(model,)")
    target = project(tmp_path, monkeypatch, {"train.py": source})
    (finding,) = check_cuda_fork(target, "forkserver", "linux")
    assert finding.status == "fail" and "is given model, which holds CUDA" in finding.message


@needs_fork_default
def test_a_pool_after_cuda_fails_when_its_tasks_use_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = """\
        import torch
        from multiprocessing import Pool

        def on_gpu(i):
            return torch.ones(i).cuda()

        def on_cpu(i):
            return i

        if __name__ == "__main__":
            torch.ones(1).cuda()
            with Pool(2) as pool:
                pool.map(on_cpu, range(4))
            with Pool(2) as pool:
                pool.map(on_gpu, range(4))
        """
    target = project(tmp_path, monkeypatch, {"train.py": source})
    assert problems(check_cuda_fork, target) == {("fail", "train.py:14")}  # the CPU-only pool: nothing


# -- what project modules export: functions returning lambdas, Process subclasses ------------------------
def test_a_function_of_another_module_that_returns_lambdas_is_followed_into_a_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "train.py": """\
            from torch.utils.data import DataLoader
            from data.sets import Pairs

            if __name__ == "__main__":
                for batch in DataLoader(Pairs(), num_workers=2):
                    pass
            """,
        "data/__init__.py": "",
        "data/base.py": """\
            import torch.utils.data as tud
            from torchvision import transforms

            class Base(tud.Dataset):
                pass

            def get_transform(flip):
                steps = [transforms.ToTensor()]
                if flip:
                    steps.append(transforms.Lambda(lambda img: img.flip(0)))
                steps += [transforms.Lambda(lambda img: img * 2)]
                return transforms.Compose(steps)
            """,
        "data/sets.py": """\
            from .base import Base, get_transform

            class Pairs(Base):
                def __init__(self):
                    self.tfm = get_transform(True)
            """,
    }
    target = project(tmp_path, monkeypatch, files)
    (finding,) = [f for f in check_lambdas(target, "spawn", "linux", "spawn") if f.status != "pass"]
    assert (finding.status, finding.where) == ("fail", "data/base.py:10")
    assert "lambda at data/base.py:10 and 1 more (attribute Pairs.tfm of a Dataset, given at data/sets.py:5)" in (
        finding.message
    )


@needs_fork_default
def test_an_imported_process_subclass_whose_run_uses_cuda_after_cuda_in_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "main.py": """\
            import torch
            from worker import Worker

            class Trainer:
                def __init__(self):
                    self.net = torch.nn.Linear(2, 2).cuda()
                    self.workers = [Worker(self.net) for _ in range(4)]

                def train(self):
                    [w.start() for w in self.workers]

            if __name__ == "__main__":
                Trainer().train()
            """,
        "worker.py": """\
            import torch.multiprocessing as mp
            import torch

            device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")

            class Worker(mp.Process):
                def run(self):
                    state = torch.zeros(1).to(device)
            """,
    }
    target = project(tmp_path, monkeypatch, files)
    (finding,) = check_cuda_fork(target, "forkserver", "linux")
    assert (finding.status, finding.where) == ("fail", "main.py:10")
    assert "the child Worker.run uses CUDA at line 8" in finding.message


# -- the default configuration: argparse defaults, options -------------------------------------------------
@pytest.mark.parametrize(
    ("workers", "expected"),
    [
        ('parser.add_argument("-j", "--workers", type=int, default=4)', "fail"),  # runs as-is with workers
        ('parser.add_argument("--workers", type=int, default=0)', "warn"),  # only with --workers N
        ('parser.add_argument("--workers", default=None)\nargs.workers = min(16, os.cpu_count())', "fail"),
        ('parser.add_argument("--workers", type=int)', "warn"),  # cannot tell
    ],
)
def test_num_workers_from_argparse_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str, expected: str
) -> None:
    source = "\n".join([
        "import argparse, os", "from torch.utils.data import DataLoader", "parser = argparse.ArgumentParser()",
        workers, "args = parser.parse_args()",
        "loader = DataLoader(range(8), collate_fn=lambda b: b, num_workers=args.workers)\n",
    ])  # fmt: skip
    target = project(tmp_path, monkeypatch, {"train.py": source})
    line = source.count("\n")
    assert problems(check_lambdas, target, as_method="spawn") == {(expected, f"train.py:{line}")}


def test_a_lambda_made_only_when_an_option_is_set_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = """\
        from torch.utils.data import DataLoader

        def main(args):
            collate_fn = None
            if args.mixup:
                collate_fn = lambda batch: batch
            loader = DataLoader(range(8), num_workers=4, collate_fn=collate_fn)
        """
    target = project(tmp_path, monkeypatch, {"train.py": source})
    assert problems(check_lambdas, target, as_method="spawn") == {("warn", "train.py:6")}


def test_a_process_subclass_keeping_a_local_function_from_another_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "train.py": "from workers import Pool\n\nif __name__ == '__main__':\n    Pool().start()\n",
        "envs.py": "def make_env(name):\n    def _make():\n        return name\n    return _make\n",
        "workers.py": """\
            import torch.multiprocessing as mp
            from envs import make_env

            class Pool(mp.Process):
                def __init__(self):
                    super().__init__()
                    self.env_fns = [make_env("cartpole") for _ in range(4)]
            """,
    }
    target = project(tmp_path, monkeypatch, files)
    (finding,) = [f for f in check_lambdas(target, "spawn", "linux", "spawn") if f.status != "pass"]
    assert (finding.status, finding.where) == ("fail", "workers.py:7")  # a named function: where it is kept
    assert "local function make_env.<locals>._make at envs.py:2" in finding.message
    assert "attribute Pool.env_fns of a Process" in finding.message


def test_an_imported_class_that_keeps_a_lambda_is_reported_at_the_lambda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "train.py": """\
            from torch.utils.data import DataLoader
            from vision.aug import TrainAugmentation
            from vision.data import VOCDataset

            if __name__ == "__main__":
                ds = VOCDataset("voc", label_transform=TrainAugmentation(300))
                for batch in DataLoader(ds, num_workers=4):
                    pass
            """,
        "vision/__init__.py": "",
        "vision/aug.py": "class TrainAugmentation:\n    def __init__(self, n):\n        self.f = lambda x: x / n\n",
    }
    target = project(tmp_path, monkeypatch, files)
    assert problems(check_lambdas, target, as_method="spawn") == {("fail", "vision/aug.py:3")}


def test_a_module_level_call_of_a_project_function_that_iterates_loaders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "unet.py": "import data\nfrom data import valid\n\ntrain_iter = data.train()\nvalid()\n",
        "data.py": """\
            from torch.utils.data import DataLoader

            def train():
                return [x for x in DataLoader(range(8), num_workers=2)]

            def valid():
                loaders = {k: DataLoader(range(8), num_workers=2) for k in ("a", "b")}
                run(loaders["a"])
            """,
    }
    target = project(tmp_path, monkeypatch, files)
    assert problems(check_main_guard, target, as_method="spawn") == {("fail", "unet.py:4"), ("fail", "unet.py:5")}
    (finding, _) = check_main_guard(target, "spawn", "linux", "spawn")
    assert "data.train() runs at import" in finding.message


def test_num_workers_given_as_a_parameter_is_read_at_the_call_sites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = """\
        import multiprocessing
        from torch.utils.data import DataLoader

        def build(ds, workers):
            return DataLoader(ds, num_workers=workers, collate_fn=lambda b: b)

        def main():
            multiprocessing.set_start_method("spawn", force=True)
            for batch in build(range(8), 4):
                pass
        """
    target = project(tmp_path, monkeypatch, {"train.py": source})
    assert problems(check_lambdas, target) == {("fail", "train.py:5")}  # spawn forced: fails on Linux too


def test_a_method_of_an_imported_class_run_at_import_iterates_a_loader_from_a_third_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "run.py": """\
            import argparse
            from exp.main import Exp_Main

            parser = argparse.ArgumentParser()
            parser.add_argument("--num_workers", type=int, default=10)
            args = parser.parse_args()
            Exp = Exp_Main
            exp = Exp(args)
            exp.train()
            """,
        "exp/__init__.py": "",
        "exp/main.py": """\
            from provider import data_provider

            class Exp_Main:
                def __init__(self, args):
                    self.args = args

                def _get_data(self):
                    return data_provider(self.args)

                def train(self):
                    train_set, train_loader = self._get_data()
                    for i, batch in enumerate(train_loader):
                        pass
            """,
        "provider.py": """\
            from torch.utils.data import DataLoader

            def data_provider(args):
                data_loader = DataLoader(range(8), num_workers=args.num_workers)
                return range(8), data_loader
            """,
    }
    target = project(tmp_path, monkeypatch, files)
    (finding,) = check_main_guard(target, "spawn", "linux", "spawn")
    assert (finding.status, finding.where) == ("fail", "run.py:9")  # num_workers: run.py's default, 10
    assert "exp.train() runs at import" in finding.message
