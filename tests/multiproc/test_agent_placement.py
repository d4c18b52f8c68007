"""Where multiprocessing's probe fails (Python 3.14's authenticated forkserver), the agent runs in the launcher.

The fallback must be a path that works: workers still fork from the
torch-preloaded server, the agent runs in the launcher process (which then
imports torch), the plan says why, failures are reported as usual and nothing
is left behind. The probe's answer is faked in the launcher process by a
wrapper script; the workers run as they always do.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
pytestmark = pytest.mark.timeout(120)

FAKED_PROBE = """
import sys
from launcher.compat import mp
mp.probe.cache_clear()
mp.probe = lambda: mp.Problems(agent_in_server="faked: this Python authenticates the forkserver's socket")
from launcher.cli.main import main
code = main(sys.argv[1:])
print("torch imported:", "torch" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in env.items() if name != "PET_START_METHOD"}  # the forkserver path, always
    return subprocess.run([sys.executable, "-c", FAKED_PROBE, *args], cwd=SAMPLES, env=env, capture_output=True,
                          text=True, timeout=90, stdin=subprocess.DEVNULL)


def test_the_plan_places_the_agent_in_the_launcher_and_says_why(run_env: dict[str, str]) -> None:
    ran = _run(["--dry-run", "--nprocs", "2", "env_dump.py", "out"], run_env)
    assert ran.returncode == 0, ran.stderr
    assert "agent         in the launcher process (faked: this Python authenticates" in ran.stdout
    assert "note          faked: this Python authenticates the forkserver's socket: the agent runs in the launcher " \
           "process" in ran.stdout
    assert "start method  forkserver + torch preloaded" in ran.stdout  # the workers still fork from the server


def test_a_job_runs_with_the_agent_in_the_launcher(tmp_path: Path, run_env: dict[str, str]) -> None:
    ran = _run(["--nprocs", "2", "env_dump.py", str(tmp_path)], run_env)
    assert ran.returncode == 0, ran.stderr
    assert "torch imported: True" in ran.stderr  # the launcher hosts the agent
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert [r["env"]["RANK"] for r in ranks] == ["0", "1"] and all(r["name"] == "__main__" for r in ranks)


def test_a_failing_rank_is_reported_with_the_agent_in_the_launcher(tmp_path: Path, run_env: dict[str, str]) -> None:
    ran = _run(["--nprocs", "2", "faults.py", "raise", str(tmp_path)], run_env)
    assert ran.returncode == 1, ran.stderr
    assert re.search(r"launcher: job failed at [\d:.]+: rank 1 ", ran.stderr), ran.stderr
    assert "root cause traceback of rank 1:" in ran.stderr, ran.stderr
