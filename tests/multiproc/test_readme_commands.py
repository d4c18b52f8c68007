"""Every command of the README, docs/ and examples/*/README.md runs as written, or is excluded with the reason.

The commands are the lines of the documents' fenced ``bash`` blocks. Each is either in ``RUN`` (run
in a scratch folder holding the files the README names: ``tests/samples/readme/`` and a copy of
``examples/``; its exit code and a piece of its output checked; ``sbatch`` there is a stand-in that
keeps the script it is given and answers a job id) or in ``EXCLUDED`` with the reason it cannot run
here. A new line in a ``bash`` block that is in neither fails the test, and so does an
entry of either table that no document holds any more.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDERS = REPO / "tests" / "samples" / "readme"
DOCUMENTS = sorted({REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "examples").rglob("README.md")})
pytestmark = [pytest.mark.timeout(120), pytest.mark.own_start_methods]  # as typed: the default start method


@dataclass(frozen=True)
class Expect:
    """What a run command must show: exit code 0, these pieces of output, files holding these pieces."""

    output: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # (path in the scratch folder, a piece of its text)


# Stands in for SLURM's sbatch on PATH: keeps the script (``--parsable FILE``, or stdin) and answers a job id.
SBATCH_STAND_IN = """#!/bin/sh
if [ -n "$2" ]; then cp "$2" submitted.sh; else cat > submitted.sh; fi
echo 4242
"""


RUN: dict[str, Expect] = {
    "python -m launcher --nprocs 4 train.py --lr 0.1": Expect(("script: rank 3 of 4, lr 0.1, rank sum 6",)),
    "python -m launcher --nprocs 4 -m pkg.train --lr 0.1": Expect(("pkg script: rank 3 of 4, lr 0.1, rank sum 6",)),
    "python -m launcher --nprocs 4 pkg.train:main": Expect(("pkg main: rank 3 of 4, rank sum 6",)),
    "python -m launcher --nprocs 4 train.py:main": Expect(("main: rank 3 of 4, rank sum 6",)),
    "python -m launcher examples/train.yaml --set data.batch_size=64 -- --lr 0.05":
        Expect(("training on 4 process(es)", "epoch  20/20"), (("examples/runs/checkpoints/latest", "step-"),)),
    "python -m launcher --dry-run examples/train.yaml": Expect(("train.py:main(ctx, epochs=20, lr=0.01)",)),
    "python -m launcher check train.py": Expect(("0 failed",)),
    "python -m launcher check --as spawn train.py": Expect(("judged as if started by spawn", "0 failed")),
    "python -m launcher bench-data examples/train.yaml --workers 0,2": Expect(("best: num_workers=",)),
    "python -m launcher sbatch examples/slurm/train.yaml --dry-run": Expect(("#SBATCH --nodes=2", "exec srun ")),
    "python -m launcher sbatch train.yaml --nodes 4 --time 1-00:00:00 -o job.sh":
        Expect(files=(("job.sh", "#SBATCH --time=1-00:00:00"),)),
    "python -m launcher sbatch train.yaml --submit":
        Expect(("4242",), (("submitted.sh", "#SBATCH --gpus-per-node=4"),)),
    "python -m launcher sbatch train.yaml --submit --set data.batch_size=64 -- --extra-arg":
        Expect(("4242",), (("submitted.sh", "--set data.batch_size=64 -- --extra-arg"),)),
    "python -m launcher examples/ddp/train.yaml": Expect(("no AMP", "replicas identical: True")),
    "python -m launcher examples/ddp/train.yaml --set amp.enabled=true":
        Expect(("AMP bfloat16", "replicas identical: True")),
    "python -m launcher examples/ddp/train.yaml --set amp.enabled=true --set amp.dtype=float16":
        Expect(("float16 runs as bfloat16 on the CPU", "replicas identical: True")),
    "python -m launcher --nprocs 2 --seed 0 examples/preprocess/train.py:main":
        Expect(("accuracy on rank 0's shard: 1.00",)),
    "python -m launcher check --nprocs 2 tests/samples/parallel/data_parallel_threads.py":
        Expect(("data-parallel  WARN", "thread-cuda", "0 failed")),
    "python -m launcher report tests/samples/report_run":
        Expect(("slowest     rank 1, 28% below the mean", "plot        tests/samples/report_run/report.png")),
}
# Example folders without a command to run here, and why (every other folder of examples/ has a README.md
# with at least one command in RUN or EXCLUDED).
EXAMPLES_NOT_RUN = {"slurm": "sbatch scripts: they need a SLURM cluster (the README renders its job: --dry-run)",
                    "runs": "what runs of the examples leave (checkpoints, logs), not an example"}

SERVER = "a server that runs until stopped: tests/examples/test_inference_server.py starts it so and SIGTERMs it"
SERVER_REQUEST = "a request to that running server: tests/examples/test_inference_server.py sends each one"
SETUP = "sets up .venv (scripts/setup.sh, which CI runs through scripts/run-tests.sh)"
EXCLUDED: dict[str, str] = {
    "bash scripts/run-example.sh": SETUP + ", then trains examples/train.yaml as the line with --lr 0.05 here does",
    "bash scripts/run-tests.sh": SETUP + ", then the linters and this whole suite: it is CI",
    "python -m launcher --nnodes 2 --nprocs 4 --rdzv-backend c10d --rdzv-endpoint node0:29400 train.yaml":
        "several machines (tests/multinode launches two nodes, c10d and static, in network namespaces)",
    "python -m launcher --nnodes=2 --node-rank=0 --master-addr=node0 --master-port=29500 train.py":
        "several machines (tests/multinode launches two nodes, c10d and static, in network namespaces)",
    "cd /home/me/project": "a line of the sbatch script shown as launcher sbatch writes it, not a command",
    "exec srun --ntasks-per-node=1 --gpus-per-node=4 --cpus-per-task=32 /home/me/venv/bin/python -m launcher "
    "--nprocs gpu /home/me/project/train.yaml": "a line of the sbatch script shown, run by SLURM on GPU nodes",
    ".venv/bin/python -m benchmarks.run_all": "the benchmarks: 12-15 minutes, run on their own (docs/benchmarks.md)",
    ".venv/bin/python -m benchmarks.run_all --quick": "the benchmarks: minutes even with --quick",
    ".venv/bin/python -m benchmarks.launch_overhead": "the benchmarks: minutes, against torchrun",
    ".venv/bin/python -m benchmarks.run_all --launcher-path /path/to/checkout": "the benchmarks, on another checkout",
    "python -m benchmarks.preprocess_pool --quick": "the benchmarks: minutes, run on their own (docs/benchmarks.md)",
    "python examples/inference_server/serve.py --port 8000": SERVER,
    "python -m launcher --nprocs 2 examples/inference_server/serve.py --port 8000": SERVER,
    "curl -s -X POST localhost:8000/jobs -d {\"input\": $(python -c 'print([0.1] * 256)')}": SERVER_REQUEST,
    "curl -s -X POST localhost:8000/predict -d {\"input\": $(python -c 'print([0.1] * 256)')}": SERVER_REQUEST,
    "curl -s localhost:8000/health": SERVER_REQUEST,
    "curl -s localhost:8000/result/<id>?wait=2.0": SERVER_REQUEST,
}


def commands_of(document: Path) -> list[str]:
    """The commands of a document's ``bash`` blocks (comments dropped, ``\\`` lines joined)."""
    found: list[str] = []
    in_bash, pending = False, ""
    for line in document.read_text().splitlines():
        if line.startswith("```"):
            in_bash = line.strip() == "```bash"
            continue
        if not in_bash:
            continue
        pending += line
        if line.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        words = shlex.split(pending, comments=True)
        pending = ""
        if words:
            found.append(" ".join(words))
    return found


def documented_commands() -> dict[str, str]:
    """Each command of the documents -> the first document that holds it."""
    found: dict[str, str] = {}
    for document in DOCUMENTS:
        for command in commands_of(document):
            found.setdefault(command, document.relative_to(REPO).as_posix())
    return found


def test_every_documented_command_is_run_or_excluded_with_a_reason() -> None:
    documented = documented_commands()
    unclassified = sorted(set(documented) - set(RUN) - set(EXCLUDED))
    assert not unclassified, f"add these to RUN (with what they show) or EXCLUDED (with why): {unclassified}"
    assert not set(RUN) & set(EXCLUDED)
    stale = sorted((set(RUN) | set(EXCLUDED)) - set(documented))
    assert not stale, f"no document holds these any more: {stale}"


def test_every_example_folder_has_a_readme_with_a_command() -> None:
    for folder in sorted(p for p in (REPO / "examples").iterdir() if p.is_dir() and p.name != "__pycache__"):
        if folder.name in EXAMPLES_NOT_RUN:
            continue
        readme = folder / "README.md"
        assert readme.is_file(), f"examples/{folder.name}: add a README.md with its command"
        assert commands_of(readme), f"examples/{folder.name}/README.md: no command in a bash block"


@pytest.mark.parametrize("command", sorted(RUN))
def test_documented_command_runs(command: str, tmp_path: Path, launcher) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(PLACEHOLDERS, tmp_path, dirs_exist_ok=True)
    # without what a run of the example in the checkout left (its checkpoints would be resumed)
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("runs", "__pycache__"))
    shutil.copytree(REPO / "tests" / "samples" / "parallel", tmp_path / "tests" / "samples" / "parallel")
    shutil.copytree(REPO / "tests" / "samples" / "report_run", tmp_path / "tests" / "samples" / "report_run",
                    ignore=shutil.ignore_patterns("report.png"))
    words = shlex.split(command)
    prefix = ["python", "-m", "launcher"]
    assert words[:3] == prefix or words[0] == "launcher", f"{command}: only the launcher's commands run here"
    stand_in = tmp_path / "bin" / "sbatch"
    stand_in.parent.mkdir()
    stand_in.write_text(SBATCH_STAND_IN)
    stand_in.chmod(0o755)
    path = f"{stand_in.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    ran = launcher(words[3:] if words[:3] == prefix else words[1:], cwd=tmp_path, timeout=90, env={"PATH": path})
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    expected = RUN[command]
    for piece in expected.output:
        assert piece in output, output
    for name, piece in expected.files:
        assert (tmp_path / name).is_file(), f"{command}: no {name}"
        assert piece in (tmp_path / name).read_text(), f"{command}: {name} does not hold {piece!r}"
