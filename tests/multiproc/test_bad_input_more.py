"""More bad input: one line on stderr naming the problem and the fix, exit 2, nothing started or left.

The job file that is not text, the torchrun output values out of range (from a flag or its PET_* variable),
and a directory as the target (run like ``python DIR`` when it has a __main__.py).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(60)

CASES = {
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
    "directory as the target": ("app/notes.txt", b"not a script\n", ["app"],
                                "app: is a directory, with no __main__.py to run (name the script in it"),
}


@pytest.mark.parametrize("mode", ["launch", "dry-run"])  # the plan rejects the same things in both
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, mode, tmp_path, launcher):
    name, content, args, fragment = CASES[case]
    (tmp_path / "t.py").write_text("print('should never run')\n")
    if name:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(content)
    argv = ["--dry-run", *args] if mode == "dry-run" else args
    ran = launcher(argv, cwd=tmp_path, timeout=30)
    assert ran.returncode == 2, ran.stderr
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("launcher: error: ") and fragment in lines[0], ran.stderr
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
