"""Every bad input: one line on stderr naming the problem and the fix, exit 2, nothing started or left.

Also: a job file that is not text, torchrun output values out of range (from a flag or its PET_* variable),
a directory as the target (run like ``python DIR`` when it has a __main__.py), and more local processes
than the host's limits allow.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.own_start_methods]

CASES = {
    "malformed yaml": ("job.yaml", "entrypoint: t.py\nworld: [1,\n", [], "job.yaml:3: malformed YAML"),
    "unknown key": ("job.yaml", "entrypoint: t.py\nworld:\n  nprocz: 2\n", [],
                    "job.yaml:3: world.nprocz: unknown key (did you mean 'nprocs'?)"),
    "nprocs zero": ("job.yaml", "entrypoint: t.py\nworld:\n  nprocs: 0\n", [], "world.nprocs: must be >= 1"),
    "nprocs word": ("job.yaml", "entrypoint: t.py\nworld:\n  nprocs: four\n", [],
                    "job.yaml:3: world.nprocs: expected an integer"),
    "missing entrypoint": ("job.yaml", "seed: 1\n", [], "entrypoint: missing"),
    "missing script": (None, None, ["--nprocs", "2", "nope.py"], "nope.py: no such file"),
    "missing module": (None, None, ["-m", "no_such_module_xyz"], "no_such_module_xyz"),
    "missing function": ("funcs.py", "def work(ctx):\n    pass\n", ["funcs.py:wrok"], "did you mean 'work'"),
    "function arguments that do not fit": (
        "funcs.py", "def work(ctx, epochs=1):\n    pass\n", ["funcs.py:work", "1", "2"],
        "funcs.py:1: work(ctx, epochs=1) cannot be called as work(ctx, '1', '2'): too many positional arguments"),
    "nccl without cuda": (None, None, ["--backend", "nccl", "t.py"], "nccl"),
    "conflicting flags": (None, None, ["--standalone", "--nnodes", "2", "t.py"], "--standalone conflicts"),
    "unsupported flag": (None, None, ["--no-python", "t.py"], "--no-python"),
    "unknown flag": (None, None, ["--nprocz", "2", "t.py"], "unrecognized arguments: --nprocz"),
    "bad override": (None, None, ["--set", "world.nprocs=four", "t.py"], "--set world.nprocs=four"),
    "log dir in a file": ("afile", "not a folder\n", ["--log-dir", "afile/logs", "t.py"],
                          "afile is a file, not a folder"),
    "local ranks filter word": (None, None, ["--local-ranks-filter", "a", "t.py"],
                                "logs.local_ranks_filter: expected local ranks such as 0 or 0,2, got 'a'"),
    "local rank that does not exist": (None, None, ["--nprocs", "2", "--local-ranks-filter", "0,5", "t.py"],
                                       "local rank 5 does not exist"),
    "unknown stop signal": (None, None, ["--signals-to-handle", "SIGTERM,SIGFOO", "t.py"], "unknown signal 'SIGFOO'"),
    "redirect out of range": (None, None, ["--redirects", "7", "t.py"], "logs.redirects: expected 0-3"),
    "rendezvous option not a number": (None, None, ["--rdzv-conf", "timeout=soon", "t.py"],
                                       "world.rdzv_conf: timeout=soon: expected a whole number"),
    "rendezvous endpoint without a port number": (
        None, None, ["--nnodes", "1:2", "--rdzv-backend", "c10d", "--rdzv-endpoint", "node0:http", "t.py"],
        "'http' is not a TCP port"),
    "placeholder rendezvous host of a preset": (None, None, ["--cluster", "two-node", "t.py"],
                                                "node0 is a placeholder in the shipped two-node preset"),
    "grace period below zero": (None, None, ["--shutdown-timeout", "-1", "t.py"],
                                "world.shutdown_timeout: must be >= 0"),
    "unguarded spawn": ("unguarded.py",
                        "import torch.multiprocessing as mp\n\ndef f(i):\n    pass\n\nmp.spawn(f, nprocs=2)\n",
                        ["unguarded.py"], "unguarded.py:6"),
    "binary job file": ("job.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\xff", ["job.yaml"],
                        "job.yaml: not UTF-8 text (byte 0x89 at offset 0)"),
    "job file in latin-1": ("job.yaml", b"entrypoint: t.py\n# caf\xe9\n", ["job.yaml"],
                            "job.yaml: not UTF-8 text (byte 0xe9 at offset 22)"),
    "job file with a NUL": ("job.yaml", b"entrypoint: t.py\n\x00", ["job.yaml"],
                            "job.yaml: not a text file (character #x0000 at offset 17)"),
    "redirects 9": (None, None, ["--redirects", "9", "t.py"], "logs.redirects: expected 0-3"),
    "tee 7": (None, None, ["--tee", "7", "t.py"], "logs.tee: expected 0-3"),
    "redirects 0:9": (None, None, ["--nprocs", "2", "--redirects", "0:9", "t.py"], "logs.redirects: expected 0-3"),
    "redirects for a rank that is not local": (None, None, ["--redirects", "1:9", "t.py"],
                                               "logs.redirects: expected 0-3"),
    "checkpoint keep zero": ("job.yaml", "entrypoint: t.py\ncheckpoint:\n  dir: ckpt\n  keep: 0\n", [],
                             "job.yaml:4: checkpoint.keep: must be >= 1"),
    "checkpoint every_steps without a dir": ("job.yaml", "entrypoint: t.py\ncheckpoint:\n  every_steps: 100\n", [],
                                             "job.yaml:3: checkpoint.every_steps: is set but checkpoint.dir is not"),
    "directory as the target": ("app/notes.txt", b"not a script\n", ["app"],
                                "app: is a directory, with no __main__.py to run; name the script in it"),
    # more than any host holds: kernel.pid_max is at most 2**22 (and the open files would be 5 per rank)
    "more local processes than the host allows": (None, None, ["--nprocs", "10000000", "t.py"],
                                                  "world.nprocs: 10000000 local processes"),
}


@pytest.mark.parametrize("mode", ["launch", "dry-run"])  # the plan rejects the same things in both
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, mode, tmp_path, launcher):
    name, content, args, fragment = CASES[case]
    (tmp_path / "t.py").write_text("print('should never run')\n")
    if name:  # text, or bytes for a job file that is not text; in a subfolder when the name says so
        (tmp_path / name).parent.mkdir(exist_ok=True)
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content)
    argv = args if args else [name]
    if mode == "dry-run":
        argv = ["--dry-run", *argv]
    ran = launcher(argv, cwd=tmp_path, timeout=30)
    assert ran.returncode == 2, ran.stderr
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 or (case == "unknown flag" and lines[-1].startswith("launcher: error")), ran.stderr
    assert lines[-1].startswith("launcher: error: ") and fragment in lines[-1]
    assert "Traceback" not in ran.stderr and "should never run" not in ran.stdout


def test_busy_master_port(tmp_path, launcher):
    (tmp_path / "t.py").write_text("print('should never run')\n")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        ran = launcher(["--master-port", port, "t.py"], cwd=tmp_path, timeout=30)
    assert ran.returncode == 2 and f"{port}" in ran.stderr and "should never run" not in ran.stdout


@pytest.mark.parametrize("start_method", ["auto", "spawn"])  # the agent in the server's child, or in the launcher
def test_master_port_taken_after_the_check(start_method, tmp_path, launcher):
    """The port is taken between the preflight and the store's bind (here: the check is skipped)."""
    (tmp_path / "t.py").write_text("print('should never run')\n")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        ran = launcher(["--skip-check", "port", "--start-method", start_method, "--master-port", port, "t.py"],
                       cwd=tmp_path, timeout=30)
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert ran.returncode == 2, ran.stderr
    assert lines == [f"launcher: error: port: master port {port} is already in use on 127.0.0.1 "
                     "(pick another master port, or leave it unset so the launcher chooses a free one)"]
    assert "should never run" not in ran.stdout


def test_real_import_error_shows_its_traceback(tmp_path, launcher):
    (tmp_path / "broken.py").write_text("import no_such_dependency_xyz\n\ndef main(ctx):\n    pass\n")
    ran = launcher(["--nprocs", 2, "broken.py:main"], cwd=tmp_path)
    assert ran.returncode == 1
    assert "ModuleNotFoundError: No module named 'no_such_dependency_xyz'" in ran.stderr
    assert "broken.py\", line 1" in ran.stderr.split("root cause traceback")[1]


def test_dry_run_starts_nothing(tmp_path, launcher):
    script = Path(tmp_path / "t.py")
    script.write_text("open('ran', 'w').write('x')\n")
    ran = launcher(["--nprocs", 3, "--dry-run", "t.py", "--lr", "1"], cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "rank 2 (local 2)" in ran.stdout and "MASTER_PORT=<chosen at launch>" in ran.stdout
    assert not (tmp_path / "ran").exists()


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path, run_env):
    import subprocess
    import sys

    (tmp_path / "t.py").write_text("print('never')\n")
    # 3000 ranks: a plan (one row a rank, about 150 kB) larger than the pipe buffer (64 kB), so the launcher is
    # still writing when the reader leaves
    process = subprocess.Popen([sys.executable, "-m", "launcher", "--dry-run", "--nprocs", "3000", "t.py"],
                               cwd=tmp_path, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"launch plan\n"
    process.stdout.close()  # like `| head -1`
    _, stderr = process.communicate(timeout=30)
    assert b"Traceback" not in stderr and process.returncode == 141


@pytest.mark.parametrize("start_method", ["auto", "spawn"])
def test_a_log_dir_that_cannot_be_made_at_launch_is_one_line(start_method, tmp_path, launcher):
    """With the check skipped, the run folder cannot be made: one line, exit 2, the target never runs."""
    (tmp_path / "t.py").write_text("print('should never run')\n")
    (tmp_path / "afile").write_text("not a folder\n")
    ran = launcher(["--skip-check", "paths", "--start-method", start_method, "--log-dir", "afile/logs", "t.py"],
                   cwd=tmp_path, timeout=30)
    assert ran.returncode == 2, ran.stderr
    assert "logs.dir: cannot create a run folder in afile/logs" in ran.stderr and "Traceback" not in ran.stderr
    assert "should never run" not in ran.stdout


def test_out_of_range_output_values_from_torchrun_variables_are_rejected(tmp_path, launcher):
    (tmp_path / "t.py").write_text("print('should never run')\n")
    ran = launcher(["t.py"], cwd=tmp_path, timeout=30, env={"PET_TEE": "7"})
    assert ran.returncode == 2 and "logs.tee: expected 0-3" in ran.stderr and "should never run" not in ran.stdout


def test_a_directory_with_a_main_runs_as_python_runs_it(tmp_path, launcher):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__main__.py").write_text(
        "import os, sys\n"
        "print('main of app', os.environ['RANK'], sys.argv[1:], sys.path[0] == os.path.abspath('app'))\n")
    ran = launcher(["--nprocs", 2, "app", "x"], cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert sorted(line.split(": ", 1)[1] for line in ran.stdout.splitlines()) == [
        "main of app 0 ['x'] True", "main of app 1 ['x'] True"]
