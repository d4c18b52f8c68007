"""The sbatch script: golden files for typical jobs, and values that must never become shell code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.config.layers import Layer
from launcher.config.validate import build_config
from launcher.slurm.script import ScriptRequest, render_script

GOLDEN = Path(__file__).parent / "golden"
JOB_FILE = "/work/jobs/train.yaml"

CASES = {
    "cpu_1node": {},
    "gpu_2x4_per_node": {"slurm": {"nodes": 2, "gpus_per_node": 4, "cpus_per_task": 32, "partition": "gpu",
                                   "time": "04:00:00", "account": "proj-17", "qos": "normal", "mem": "256G",
                                   "constraint": "a100&ib"}},
    "gpu_2x4_per_task": {"slurm": {"mode": "per_task", "nodes": 2, "gpus_per_node": 4, "cpus_per_task": 8,
                                   "partition": "gpu", "time": "1-00:00:00"}},
    "setup_and_extra_lines": {"logs": {"dir": "/scratch/runs/exp 1"},
                              "slurm": {"job_name": "exp1", "output": "/scratch/runs/slurm%logs",
                                        "extra_sbatch": ["--mail-type=END,FAIL", "--exclusive"],
                                        "setup": ["module load cuda/12.4", "source ~/venv/bin/activate",
                                                  'export NCCL_DEBUG="WARN"  # as written'],
                                        "preempt_warning": 300}},
    "cpu_2x4_per_task": {"world": {"nprocs": 4}, "slurm": {"mode": "per_task", "nodes": 2}},
    "no_requeue": {"checkpoint": {"stop_signal": None}, "slurm": {"requeue": False, "nodes": 3}},
    "quoted_values": {"slurm": {"output": "/work/out"}},
}
FIELDS = {"quoted_values": {"job_file": "/work/my jobs/it's $(here).yaml", "cwd": "/work/a b",
                            "overrides": ("env.X=`id`; $(touch y)", "data.batch_size=64"), "args": ("a b", "'", "")}}


def _request(tree: dict[str, object], **fields: object) -> ScriptRequest:
    config = build_config([Layer({"entrypoint": "train.py:main", **tree}, {}, "test")])
    values: dict[str, object] = {"job_file": JOB_FILE, "overrides": ("data.batch_size=64",), "args": ("--lr", "0.1"),
                                 "cwd": "/work", "python": "python", **fields}
    return ScriptRequest(config, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_script_matches_its_golden_file(name: str) -> None:
    script = render_script(_request(CASES[name], **FIELDS.get(name, {})))
    if os.environ.get("LAUNCHER_UPDATE_GOLDEN"):
        (GOLDEN / f"{name}.sh").write_text(script)
    assert script == (GOLDEN / f"{name}.sh").read_text()
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


HOSTILE = ["two words", "it's", 'say "hi"', "$(touch pwned1)", "`touch pwned2`", "a;touch pwned3", "a|touch pwned4",
           "line\nbreak", "back\\slash", "*", "$HOME", "-- --set x", "#not a comment", "tab\there", ""]


def test_no_value_of_the_srun_line_can_become_shell_code(tmp_path: Path) -> None:
    """Run the whole script with bash, srun a stub that prints its argv: exactly what was meant, nothing run."""
    values = HOSTILE
    folder = tmp_path / "we'ird $(touch pwned5) `touch pwned6` dir\nname"
    folder.mkdir()
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "srun").write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                                "print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}))\n")
    (stubs / "srun").chmod(0o755)
    job_file = str(folder / "train $(x).yaml")
    overrides = tuple(f"env.V{i}={value}" for i, value in enumerate(values))
    request = _request({"slurm": {"output": str(tmp_path)}}, job_file=job_file, overrides=overrides,
                       args=tuple(values), cwd=str(folder), python=str(folder / "py thon"))
    script = render_script(request)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"})
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    expected = ["--ntasks-per-node=1", str(folder / "py thon"), "-m", "launcher", job_file]
    for assignment in overrides:
        expected += ["--set", assignment]
    assert seen == {"argv": [*expected, "--", *values], "cwd": str(folder)}
    assert [path.name for path in tmp_path.rglob("pwned*")] == []
