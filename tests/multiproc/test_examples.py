"""Every example runs as its README says: each ``python ...`` line of the README's bash blocks, from the
repository root, exits 0 (under a minute on a CPU) and prints what the README promises."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
NOT_RUN = {"slurm": "sbatch scripts: they need a SLURM cluster (tests/unit/slurm renders its job)"}
EXPECTED = {  # what the output shows when the command did its job (else: exit code 0 is all)
    "python -m launcher examples/ddp/train.yaml": ("no AMP", "replicas identical: True"),
    "python -m launcher examples/ddp/train.yaml --set amp.enabled=true": ("AMP bfloat16", "replicas identical: True"),
    "python -m launcher --nprocs 2 --seed 0 examples/preprocess/train.py:main": ("accuracy on rank 0's shard: 1.00",),
}


def readme_commands(readme: Path) -> list[str]:
    """The ``python ...`` lines of the README's bash code blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", readme.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("python ")]


def cases() -> list[tuple[str, str]]:
    return [(folder.name, command) for folder in sorted(EXAMPLES.iterdir()) if (folder / "README.md").is_file()
            for command in readme_commands(folder / "README.md")]


def test_every_example_folder_has_a_readme_with_a_command_or_a_reason_not_to_run_it():
    for folder in sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and p.name != "__pycache__"):
        if folder.name in NOT_RUN:
            continue
        assert (folder / "README.md").is_file(), f"examples/{folder.name}: add a README.md with its command"
        assert readme_commands(folder / "README.md"), f"examples/{folder.name}/README.md: no python command"


@pytest.mark.parametrize(("example", "command"), cases())
def test_example_runs_as_its_readme_says(example, command, run_env):
    argv = shlex.split(command)
    ran = subprocess.run([sys.executable, *argv[1:]], cwd=REPO, env=run_env, capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert ran.returncode == 0, f"{command}\n{ran.stdout[-2000:]}\n{ran.stderr[-3000:]}"
    for fragment in EXPECTED.get(command, ()):
        assert fragment in ran.stdout + ran.stderr, f"{example}: {command}\n{ran.stdout[-2000:]}"
