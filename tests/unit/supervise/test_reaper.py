"""The reaper on its own (no torch, no launcher): what it does when its launcher's pipe closes, and when not."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from launcher.supervise.descendants import JOB_TAG_VARIABLE
from launcher.supervise.reaper import Reaper

pytestmark = pytest.mark.timeout(60)
SLEEPER = "import os, sys, time\nos.setsid()\nopen(sys.argv[1], 'w').close()\ntime.sleep(3600)\n"


def _start_tagged_daemon(tag: str, ready: str, env: dict[str, str]) -> psutil.Process:
    """A process that carries ``tag`` and left this session, as a rank's daemon would."""
    process = subprocess.Popen([sys.executable, "-c", SLEEPER, ready], env={**env, JOB_TAG_VARIABLE: tag})
    while not os.path.exists(ready):
        assert process.poll() is None
        time.sleep(0.01)
    return psutil.Process(process.pid)


def test_an_abandoned_reaper_kills_what_carries_its_tag_and_removes_its_folders(tmp_path, run_env):
    reaper = subprocess.Popen([sys.executable, "-m", "launcher.supervise.reaper", "tag1"], stdin=subprocess.PIPE,
                              env=run_env)
    assert reaper.stdin is not None
    folder, unknown = tmp_path / "pymp-x", tmp_path / "kept"
    (folder / "sub").mkdir(parents=True), unknown.mkdir()
    reaper.stdin.write(f"dir {folder}\ndir {tmp_path / 'never-made'}\n".encode())
    ours = _start_tagged_daemon("tag1", str(tmp_path / "ready1"), run_env)
    theirs = _start_tagged_daemon("tag2", str(tmp_path / "ready2"), run_env)
    reaper.stdin.close()  # as when the launcher dies
    assert reaper.wait(timeout=30) == 0
    assert not ours.is_running() or ours.status() == psutil.STATUS_ZOMBIE
    assert theirs.is_running() and theirs.status() != psutil.STATUS_ZOMBIE  # another launch's: left alone
    theirs.kill()
    assert not folder.exists() and unknown.exists()


def test_the_launchers_side_tags_what_it_starts_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(JOB_TAG_VARIABLE, raising=False)
    reaper = Reaper()
    folder = reaper.make_temp_dir("launcher-", str(tmp_path))
    assert os.path.isdir(folder) and os.path.basename(folder).startswith("launcher-")
    assert os.environ[JOB_TAG_VARIABLE] == reaper.tag
    helper = psutil.Process(reaper._process.pid)
    assert os.getpgid(helper.pid) == helper.pid  # a group of its own: a SIGKILL of ours does not reach it
    reaper.close()  # the launch cleaned up itself: the reaper goes, at once, and removes nothing
    assert not helper.is_running() and os.path.isdir(folder)
    assert JOB_TAG_VARIABLE not in os.environ
