"""Where elastic's probe fails (a torch whose internals changed), the agent keeps elastic's own monitoring.

The fallback must be a path that works: the job runs, the launcher says once
why it monitors the elastic way, and a failing rank is still reported with its
traceback and exit code. The probe's answer is faked by a wrapper script in
the process that hosts the agent: the launcher itself, so either workers are
spawned, or the multiprocessing probe is faked as well (the agent leaves the
forkserver; the workers still fork from it). The workers run as they always do.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
pytestmark = [pytest.mark.timeout(120), pytest.mark.own_start_methods]
MISSING = "MultiprocessContext._ret_vals"
WARNING = "launcher: warning: this torch lacks what the launcher's agent reads of elastic"

FAKED_PROBES = f"""
import sys
from launcher.compat import elastic, mp
elastic.probe = lambda: ({MISSING!r},)
if sys.argv[1] == "forkserver":
    mp.probe.cache_clear()
    mp.probe = lambda: mp.Problems(agent_in_server="faked: the agent may not use the server")
from launcher.cli.main import main
sys.exit(main(["--start-method", *sys.argv[1:]]))
"""


@pytest.fixture(params=["spawn", "forkserver"])
def start_method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _run(start_method: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in env.items() if name != "PET_START_METHOD"}  # the method asked, always
    return subprocess.run([sys.executable, "-c", FAKED_PROBES, start_method, *args], cwd=SAMPLES, env=env,
                          capture_output=True, text=True, timeout=100, stdin=subprocess.DEVNULL)


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(WARNING)]


def test_a_job_runs_on_elastic_monitoring(start_method: str, tmp_path: Path, run_env: dict[str, str]) -> None:
    ran = _run(start_method, ["--nprocs", "2", "env_dump.py", str(tmp_path)], run_env)
    assert ran.returncode == 0, ran.stderr
    warnings = _warnings(ran.stderr)
    assert len(warnings) == 1 and MISSING in warnings[0], ran.stderr
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert [r["env"]["RANK"] for r in ranks] == ["0", "1"]


def test_a_failing_rank_is_reported_on_elastic_monitoring(start_method: str, tmp_path: Path,
                                                          run_env: dict[str, str]) -> None:
    """The job fails with exit code 1 and the summary names rank 1, with its traceback, as the root cause.

    Elastic's monitor reports one failure, the first exited rank its poll finds, and by then rank 0 may
    have failed too (its barrier lost rank 1): the agent adds every rank that wrote an error file, and
    the earliest exception is the root cause, as with the launcher's own monitoring.
    """
    ran = _run(start_method, ["--nprocs", "2", "faults.py", "raise", str(tmp_path)], run_env)
    assert ran.returncode == 1, ran.stderr
    assert len(_warnings(ran.stderr)) == 1, ran.stderr
    assert "[rank1]: RuntimeError: rank one broke down" in ran.stderr, ran.stderr
    assert "in fail_in_rank_one" in ran.stderr, ran.stderr
    summary = ran.stderr[ran.stderr.index("launcher: job failed"):] if "launcher: job failed" in ran.stderr else ""
    assert re.match(r"launcher: job failed at [\d:.]+: rank 1 ", summary), ran.stderr
    assert "launcher: root cause traceback of rank 1:" in summary, summary
