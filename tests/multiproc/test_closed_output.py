"""A reader of the launcher's output that goes away (``launcher ... | head -1``): the job stops, exit 141.

The reader here reads one line and closes its end of the pipe, as ``head -1`` does.
The launcher must then stop every rank (the ``token`` fixture fails the test if a
process is left), print one line on stderr, keep the log files complete up to the
stop, and exit 141 (128 + SIGPIPE), also when the job would have ended on its own.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _fifos(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if stat.S_ISFIFO(path.lstat().st_mode)]


@pytest.mark.parametrize(("stream", "lines"), [("stdout", 0), ("stdout", 20000), ("stderr", 0)],
                         ids=["endless", "finite", "stderr"])
def test_a_reader_that_leaves_stops_the_job_with_141(stream, lines, tmp_path, run_env, token):
    logs = tmp_path / "logs"
    args = ["--nprocs", "2", "--log-dir", str(logs), "printer.py", "--stream", stream, "--lines", str(lines)]
    process = subprocess.Popen([sys.executable, "-m", "launcher", *args], cwd=SAMPLES, env=run_env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    read, other = (process.stdout, process.stderr) if stream == "stdout" else (process.stderr, process.stdout)
    assert read is not None and other is not None
    first = read.readline().decode()
    shown = 0 if first.startswith("[rank0]") else 1  # the rank whose line the reader got
    assert first == f"[rank{shown}]: line 0 from rank {shown}\n"
    (run,) = logs.iterdir()
    assert _fifos(run / "attempt_0" / str(shown)) == []  # the rank removed its FIFOs as it connected to them
    read.close()  # as ``head -1`` does
    rest = other.read().decode()
    assert process.wait(timeout=60) == 141, rest
    if stream == "stdout":  # 20000 lines of each rank outgrow every pipe on the way: the job was still writing
        said = rest.splitlines()
        assert said[0] == "launcher: stdout was closed by its reader (a pipe like `| head`): stopped the job", rest
        assert len(said) == 3 and said[1].startswith("launcher: metrics and events in the run folder"), rest
        assert said[2].endswith(f", exit code 141; logs in {run}"), rest
    else:  # nothing to say it on: stdout has the workers' lines only
        assert rest == ""
    for rank in (0, 1):  # every line written until the stop, in order, none lost (the other rank may have none)
        written = (run / "attempt_0" / str(rank) / f"{stream}.log").read_text().splitlines()
        assert written == [f"line {i} from rank {rank}" for i in range(len(written))]
        assert len(written) <= (lines or len(written)) and (rank != shown or len(written) >= 1)
    assert _fifos(logs) == []
    shutil.copytree(logs, tmp_path / "copy")
