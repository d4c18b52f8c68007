"""``launcher sbatch``: print, write, submit (a stub sbatch on PATH); every bad value is one line and exit 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from launcher.cli.main import main
from launcher.errors import EXIT_USAGE

JOB = """\
entrypoint: train.py:main
checkpoint:
  dir: ckpt
slurm:
  nodes: 2
  gpus_per_node: 4
  time: "01:00:00"
"""


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("def main(ctx):\n    pass\n")
    path = tmp_path / "train.yaml"
    path.write_text(JOB)
    return path


def _stub(folder: Path, name: str, body: str) -> None:
    """A command on PATH that records its argv and stdin in ``name``.json, then runs ``body``."""
    folder.mkdir(exist_ok=True)
    script = folder / name
    script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                      f"record = {{'argv': sys.argv[1:], 'stdin': sys.stdin.read()}}\n"
                      f"open({str(folder / (name + '.json'))!r}, 'w').write(json.dumps(record))\n{body}\n")
    script.chmod(0o755)


def test_dry_run_prints_the_script_with_the_flags_on_top(job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sbatch", str(job), "--nodes", "4", "--partition", "a100", "--setup", "module load cuda",
                 "--sbatch-line=--exclusive", "--set", "data.batch_size=8", "--dry-run", "--", "--lr", "1"]) == 0
    script = capsys.readouterr().out
    assert "#SBATCH --nodes=4\n" in script and "#SBATCH --partition=a100\n" in script
    assert "#SBATCH --exclusive\nmodule load cuda\n" in script.replace("\n\n# setup (slurm.setup)", "")
    assert script.endswith(f"--nprocs gpu {job} --set data.batch_size=8 -- --lr 1\n")


def test_submit_gives_sbatch_the_script_and_prints_the_job_id(job: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    stubs = tmp_path / "bin"
    _stub(stubs, "sbatch", "print('4242;cluster')")
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ['PATH']}")
    assert main(["sbatch", str(job), "--dry-run"]) == 0
    expected = capsys.readouterr().out
    assert main(["sbatch", str(job), "--submit"]) == 0
    assert capsys.readouterr().out == "4242\n"
    assert json.loads((stubs / "sbatch.json").read_text()) == {"argv": ["--parsable"], "stdin": expected}
    assert (tmp_path / "slurm-%j.out").exists() is False and tmp_path.is_dir()  # the output folder: the job's

    assert main(["sbatch", str(job), "-o", "job.sh", "--submit"]) == 0  # the written file is what is submitted
    assert (tmp_path / "job.sh").read_text() == expected and os.access(tmp_path / "job.sh", os.X_OK)
    assert json.loads((stubs / "sbatch.json").read_text()) == {"argv": ["--parsable", str(tmp_path / "job.sh")],
                                                                "stdin": ""}


def test_submit_creates_the_output_folder(job: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stubs = tmp_path / "bin"
    _stub(stubs, "sbatch", "print('7')")
    monkeypatch.setenv("PATH", f"{stubs}{os.pathsep}{os.environ['PATH']}")
    assert main(["sbatch", str(job), "--set", "slurm.output=runs/slurm", "--submit"]) == 0
    assert (tmp_path / "runs" / "slurm").is_dir()


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("launcher: error: "), err
    return err


@pytest.mark.parametrize(("stub", "fragment"), [
    (None, "sbatch: not found"),
    ("sys.stderr.write('sbatch: error: invalid partition specified: gpu\\n'); sys.exit(1)",
     "sbatch refused the job (exit code 1): sbatch: error: invalid partition specified: gpu"),
    ("print('Submitted batch job 12')", "sbatch: unexpected answer 'Submitted batch job 12'"),
])
def test_a_missing_or_failing_sbatch_is_one_line_and_exit_2(job: Path, tmp_path: Path, stub: str | None,
                                                           fragment: str, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    if stub is not None:
        _stub(stubs, "sbatch", stub)
    monkeypatch.setenv("PATH", str(stubs))
    assert main(["sbatch", str(job), "--submit"]) == EXIT_USAGE
    assert fragment in _one_error_line(capsys)


@pytest.mark.parametrize(("args", "yaml", "fragment"), [
    (["--partition", "gpu\n#SBATCH --wrap=x"], "", "--partition: slurm.partition: 'gpu\\n#SBATCH --wrap=x' holds"),
    (["--job-name", "my job"], "", "slurm.job_name: 'my job' holds ' ', which an #SBATCH line cannot carry"),
    (["--account", 'a"b'], "", "slurm.account: 'a\"b' holds '\"'"),
    (["--qos", "x#y"], "", "slurm.qos: 'x#y' holds '#'"),
    (["--time", "soon"], "", "slurm.time: 'soon' is not a time limit"),
    (["--time", "2"], "", "slurm.time: 2 leaves no time before the preemption notice"),
    (["--mem", "lots"], "", "slurm.mem: 'lots' is not a size"),
    (["--nodes", "0"], "", "--nodes: slurm.nodes: must be >= 1"),
    (["--nodes", "two"], "", "argument --nodes: invalid int value: 'two'"),
    (["--sbatch-line", "--mail-type=END\nrm -rf ~"], "", "--sbatch-line: '--mail-type=END\\nrm -rf ~' holds '\\n'"),
    (["--sbatch-line", "exclusive"], "", "--sbatch-line: 'exclusive' is not an sbatch option"),
    (["--setup", "module load cuda\ntouch x"], "", "--setup: 'module load cuda\\ntouch x' holds '\\n'"),
    (["--set", 'slurm.setup=["a\\nb"]'], "", "--set slurm.setup=[\"a\\nb\"]: slurm.setup: 'a\\nb' holds '\\n'"),
    (["--set", "slurm.ntasks_per_node=4"], "", "slurm.ntasks_per_node: is only for mode per_task"),
    ([], "  nodez: 3\n", "train.yaml:8: slurm.nodez: unknown key (did you mean 'nodes'?)"),
    ([], "  preempt_signal: SIGUSR2\n", "train.yaml:8: slurm.preempt_signal: is SIGUSR2 but checkpoint.stop_signal"),
    ([], "  output: out dir\n", "train.yaml:8: slurm.output: "),
    (["--set", "checkpoint.stop_signal=SIGUSR2"], "", "checkpoint.stop_signal: SIGUSR2 cannot be SLURM's preemption"),
    (["--set", "logs.dir=my logs"], "", "slurm.output: "),
    (["--dry-run", "--submit"], "", "--dry-run only prints the script"),
])
def test_a_bad_value_is_one_line_naming_it_and_exit_2(job: Path, args: list[str], yaml: str, fragment: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    job.write_text(JOB + yaml)
    assert main(["sbatch", str(job), *args]) == EXIT_USAGE
    assert fragment in _one_error_line(capsys)
    assert not list(job.parent.glob("*.sh"))


def test_a_script_target_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sbatch", str(tmp_path / "train.py")]) == EXIT_USAGE
    assert "sbatch takes a .yaml job file" in _one_error_line(capsys)


def test_the_example_job_renders(capsys: pytest.CaptureFixture[str]) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "slurm" / "train.yaml"
    assert main(["sbatch", str(example), "--dry-run"]) == 0
    script = capsys.readouterr().out
    assert "#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n#SBATCH --gpus-per-node=4\n" in script
    assert f"-m launcher --nprocs gpu {example}\n" in script
