"""Real gloo jobs through the real CLI: env contract, targets, args, exit codes, atexit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from launcher.hostinfo import usable_cpus
from launcher.supervise.descendants import JOB_TAG_VARIABLE

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
pytestmark = pytest.mark.timeout(120)

# What torchrun --standalone sets and we deliberately set differently (the plan says so).
DIFFERENT_BY_DESIGN = {"OMP_NUM_THREADS", "MASTER_ADDR"}
PER_RUN = {"MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_ERROR_FILE"}


def _read_ranks(out: Path, count: int) -> list[dict]:
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(count)]


def _added(seen: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in seen.items() if base.get(k) != v}


@pytest.mark.parametrize("nprocs", [1, 2, 4])
def test_worker_environment_matches_torchrun(nprocs, tmp_path, launcher, torchrun, run_env):
    ours = launcher(["--nprocs", nprocs, "env_dump.py", tmp_path / "ours"])
    theirs = torchrun(["--standalone", "--nproc-per-node", nprocs, "env_dump.py", tmp_path / "theirs"])
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0, theirs.stderr
    pairs = zip(_read_ranks(tmp_path / "ours", nprocs), _read_ranks(tmp_path / "theirs", nprocs), strict=True)
    for mine, anchor in pairs:
        added_mine, added_anchor = _added(mine["env"], run_env), _added(anchor["env"], run_env)
        added_mine.pop("PYTHONPATH", None), added_anchor.pop("PYTHONPATH", None)
        # ours alone: the launch's tag, by which the reaper finds what the job left if the launcher dies
        assert len(added_mine.pop(JOB_TAG_VARIABLE)) == 16 and JOB_TAG_VARIABLE not in added_anchor
        # torchrun sets OMP_NUM_THREADS=1 only for several processes; we always set our value.
        assert sorted(set(added_mine) - {"OMP_NUM_THREADS"}) == sorted(set(added_anchor) - {"OMP_NUM_THREADS"})
        same = set(added_anchor) - DIFFERENT_BY_DESIGN - PER_RUN
        assert {k: added_mine[k] for k in same} == {k: added_anchor[k] for k in same}
        assert added_mine["MASTER_PORT"].isdigit() and added_mine["MASTER_ADDR"] == "127.0.0.1"
        assert added_mine["TORCHELASTIC_ERROR_FILE"].endswith("error.json")
        expected_threads = max(1, usable_cpus() // nprocs)
        assert added_mine["OMP_NUM_THREADS"] == str(expected_threads)
        assert mine["threads"] == expected_threads  # applied despite the preloaded torch
        assert (mine["name"], mine["cwd"], mine["argv"][0]) == (anchor["name"], anchor["cwd"], anchor["argv"][0])
        assert mine["argv"][1:] == [str(tmp_path / "ours")] and anchor["argv"][1:] == [str(tmp_path / "theirs")]
        assert mine["path0"] == anchor["path0"] == str(SAMPLES)


IMPORTS_OF_THE_LAUNCHER = (
    "import sys\n"
    "from launcher.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.mark.parametrize(("method", "imported"), [("auto", False), ("spawn", True)])
def test_the_launcher_imports_torch_only_when_it_hosts_the_agent(method, imported, tmp_path, run_env):
    """On Linux the agent forks from the torch-preloaded server; under spawn it runs in the launcher."""
    ran = subprocess.run([sys.executable, "-c", IMPORTS_OF_THE_LAUNCHER, "--start-method", method, "--nprocs", "2",
                          "env_dump.py", str(tmp_path)], cwd=SAMPLES, env=run_env, capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert ran.returncode == 0, ran.stderr
    assert len(_read_ranks(tmp_path, 2)) == 2
    assert f"torch imported: {imported}" in ran.stderr


def test_no_temp_dirs_left(tmp_path, launcher, run_env):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    ran = launcher(["--nprocs", 2, "env_dump.py", tmp_path / "out"], env={"TMPDIR": str(tmp)})
    assert ran.returncode == 0, ran.stderr
    assert list(tmp.iterdir()) == []


def test_ddp_parameters_agree_on_every_rank(tmp_path, launcher):
    ran = launcher(["--nprocs", 3, "ddp_params.py", tmp_path])
    assert ran.returncode == 0, ran.stderr
    params = [torch.load(tmp_path / f"params{rank}.pt", weights_only=True) for rank in range(3)]
    assert all(torch.equal(params[0], p) for p in params[1:])
    assert not torch.equal(params[0], torch.zeros_like(params[0]))


@pytest.mark.parametrize(
    ("mode", "code", "in_summary"),
    [
        ("ok", 0, None),
        ("raise", 1, "ValueError: rank 1 gave up"),
        ("os_exit5", 5, "exit code 5"),
        ("sigkill", 128 + 9, "killed by SIGKILL"),
    ],
)
def test_exit_codes_and_atexit_pass_through(mode, code, in_summary, tmp_path, launcher):
    ran = launcher(["--nprocs", 2, "exits.py", mode, tmp_path])
    assert ran.returncode == code, ran.stderr
    if in_summary:
        summary = [line for line in ran.stderr.splitlines() if line.startswith("launcher: job failed")]
        assert len(summary) == 1 and "rank 1 (local 1" in summary[0] and in_summary in summary[0]
    if mode == "raise":
        assert "in fail_here" in ran.stderr and "bootstrap.py" not in ran.stderr.split("root cause")[1]
    assert (tmp_path / "atexit1").exists() == (mode in ("ok", "raise"))  # sys.exit(3): the fault matrix
    if mode == "ok":
        assert (tmp_path / "atexit0").read_text() == "ran"


def test_yaml_function_entrypoint_with_overrides_and_trailing_args(tmp_path, launcher):
    job = tmp_path / "job.yaml"
    job.write_text(
        f"entrypoint: {SAMPLES / 'funcs.py'}:record\n"
        "args: []\n"
        "kwargs: {tag: from-yaml}\n"
        "seed: 7\n"
        "world: {nprocs: 3}\n"
        "env: {JOB_FLAVOUR: vanilla}\n"
    )
    ran = launcher([job, "--set", "env.JOB_FLAVOUR=mint", "--nprocs", 2, "--", tmp_path / "out"])
    assert ran.returncode == 0, ran.stderr
    seen = _read_ranks(tmp_path / "out", 2)
    assert not (tmp_path / "out" / "rank2.json").exists()  # the flag beat the file's nprocs: 3
    assert [s["rank"] for s in seen] == [0, 1] and all(s["world_size"] == 2 for s in seen)
    assert all(s["tag"] == "from-yaml" and s["seed"] == 7 and s["extra_env"] == "mint" for s in seen)
    assert [s["is_main"] for s in seen] == [True, False]
    assert all(s["backend"] == "gloo" and s["device"] == "cpu" for s in seen)


def test_yaml_paths_resolve_against_the_file(tmp_path, launcher):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "funcs.py").write_text((SAMPLES / "funcs.py").read_text())
    (tmp_path / "jobs" / "job.yaml").write_text("entrypoint: funcs.py:record\nworld: {nprocs: 2}\n")
    ran = launcher(["jobs/job.yaml", "--", tmp_path / "out"], cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert len(_read_ranks(tmp_path / "out", 2)) == 2


@pytest.mark.parametrize("form", ["-m", "module:function", "file.py:function"])
def test_module_and_function_targets(form, tmp_path, launcher):
    out = tmp_path / "out"
    args = {
        "-m": ["-m", "samplepkg.mod", out, "--flag"],
        "module:function": ["samplepkg.mod:work", out],
        "file.py:function": ["samplepkg/mod.py:work", out],
    }[form]
    ran = launcher(["--nprocs", 2, *args])
    assert ran.returncode == 0, ran.stderr
    seen = _read_ranks(out, 2)
    if form == "-m":
        assert all(s["name"] == "__main__" and s["argv"][1:] == [str(out), "--flag"] for s in seen)
        assert seen[0]["argv"][0].endswith(os.path.join("samplepkg", "mod.py"))
    else:
        assert [s["how"] for s in seen] == ["function", "function"]


def test_function_return_values_through_the_api(tmp_path):
    code = (
        "import launcher, sys\n"
        f"sys.path.insert(0, {str(SAMPLES)!r})\n"
        "import funcs\n"
        "if __name__ == '__main__':\n"
        f"    result = launcher.launch(funcs.record, nprocs=2, args=({str(tmp_path)!r},), kwargs={{'tag': 'api'}})\n"
        "    print(sorted(result.return_values.items()), result.world_size, result.nodes)\n"
    )
    script = tmp_path / "api_user.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[(0, 0), (1, 10)] 2 1"
    assert "launcher: " not in done.stderr  # a library call prints no end of run: its caller has the result
    assert json.loads((tmp_path / "rank1.json").read_text())["tag"] == "api"


def test_main_process_first_orders_the_block(tmp_path, launcher):
    ran = launcher(["--nprocs", 3, "funcs.py:ordered", tmp_path])
    assert ran.returncode == 0, ran.stderr
    assert [(tmp_path / f"saw{r}").read_text() for r in range(3)] == ["False", "True", "True"]


@pytest.mark.parametrize("runner", ["launcher", "torchrun", "python"])
def test_init_under_every_runner(runner, tmp_path, launcher, torchrun, run_env):
    out = tmp_path / "out"
    if runner == "launcher":
        ran = launcher(["--nprocs", 2, "uses_init.py", out])
    elif runner == "torchrun":
        ran = torchrun(["--standalone", "--nproc-per-node", 2, "uses_init.py", out])
    else:
        done = subprocess.run([sys.executable, "uses_init.py", out], cwd=SAMPLES, env=run_env,
                              capture_output=True, text=True, timeout=60)
        ran = done
    assert ran.returncode == 0, ran.stderr
    world = 1 if runner == "python" else 2
    seen = _read_ranks(out, world)
    assert all(s["world_size"] == world and s["sum"] == world * (world + 1) / 2 for s in seen)


def test_a_job_env_read_at_interpreter_start_is_honoured_by_spawning(tmp_path, launcher):
    """PYTHONHASHSEED only acts when an interpreter starts: a worker forked from the server (started early,
    from the command line alone) would keep the server's randomised hashing. The plan spawns instead."""
    (tmp_path / "hashing.py").write_text(
        "import os, sys\n"
        "open(os.path.join(sys.argv[1], 'rank' + os.environ['RANK']), 'w').write(str(sys.flags.hash_randomization))\n"
    )
    job = tmp_path / "job.yaml"
    job.write_text(f"entrypoint: {tmp_path / 'hashing.py'}\nargs: [{tmp_path}]\nenv: {{PYTHONHASHSEED: '0'}}\n")
    auto = ["--start-method", "auto"]  # the policy under test (CI also runs this file with PET_START_METHOD=spawn)
    assert "job env sets PYTHONHASHSEED" in launcher([*auto, job, "--nprocs", 2, "--dry-run"]).stdout
    ran = launcher([*auto, job, "--nprocs", 2])
    assert ran.returncode == 0, ran.stderr
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == ["0", "0"]  # 0: hashing not randomised


def test_a_long_tmpdir_still_launches(tmp_path, launcher):
    """The server's socket lives in multiprocessing's temp dir: under a long TMPDIR it would be too long to bind."""
    scratch = tmp_path / ("scratch-" + "x" * 80)
    scratch.mkdir()
    ran = launcher(["--nprocs", 2, "env_dump.py", tmp_path / "out"], env={"TMPDIR": str(scratch)})
    assert ran.returncode == 0, ran.stderr
    assert len(_read_ranks(tmp_path / "out", 2)) == 2
    assert list(scratch.iterdir()) == []
