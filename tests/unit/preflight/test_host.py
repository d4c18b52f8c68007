"""The checks of host facts: rendezvous host, master port, paths, GPUs (from ``hostinfo.visible_devices``), threads."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from launcher.config.job import SHIPPED_PRESETS
from launcher.hints import FIX_PORT
from launcher.hostinfo import visible_devices
from launcher.network import Resolution
from launcher.preflight.host import check_gpus, check_paths, check_port, check_rendezvous_host, check_threads

pytestmark = pytest.mark.timeout(60)
NODE0 = Resolution("node0", (), "Name or service not known")


@pytest.mark.parametrize(("key", "origin", "message", "fix"), [
    ("world.rdzv_endpoint", f"{SHIPPED_PRESETS}/two-node.yaml:10", "world.rdzv_endpoint: node0 does not resolve",
     "node0 is a placeholder in the shipped two-node preset: add --rdzv-endpoint with the first node's host name"),
    ("world.master_addr", "/jobs/train.yaml:4", "world.master_addr: node0 does not resolve",
     "replace node0 in train.yaml line 4 with the first node's host name or address, or override it with "
     "--master-addr"),
    ("world.rdzv_endpoint", "--rdzv-endpoint", "node0 does not resolve on this host: Name or service not known",
     "give --rdzv-endpoint the first node's host name or address, one that every node resolves"),
    ("world.master_addr", "PET_MASTER_ADDR", "node0 does not resolve", "give PET_MASTER_ADDR the first node's"),
])
def test_a_rendezvous_host_that_does_not_resolve_names_where_it_was_set(key, origin, message, fix) -> None:
    (finding,) = check_rendezvous_host(NODE0, key, origin)
    assert (finding.status, finding.where) == ("fail", origin)
    assert finding.message.startswith(message) and finding.fix.startswith(fix)


def test_a_rendezvous_host_that_resolves_or_is_not_asked_passes() -> None:
    (found,) = check_rendezvous_host(Resolution("10.0.0.1", ("10.0.0.1",)), "world.master_addr", "")
    assert found.status == "pass" and "10.0.0.1 resolves to 10.0.0.1" in found.message
    assert check_rendezvous_host(None, "world.rdzv_endpoint", "") == []  # one node: nothing to look up


def test_a_resolver_that_did_not_answer_is_a_warning() -> None:
    slow = Resolution("node0", (), "no answer from the resolver within 5 s", timed_out=True)
    assert [f.status for f in check_rendezvous_host(slow, "world.rdzv_endpoint", "--rdzv-endpoint")] == ["warn"]


def test_port_in_use_fails_and_free_port_passes() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = check_port("127.0.0.1", port)
    assert (taken.status, taken.fix) == ("fail", FIX_PORT) and str(port) in taken.message
    assert check_port("127.0.0.1", port).status == "pass"  # closed again


@pytest.mark.parametrize(
    ("host", "port", "status"),
    [("127.0.0.1", None, "pass"), ("127.0.0.1", 70000, "fail"), ("192.0.2.1", 29500, "pass")],
)
def test_port_edge_cases(host: str, port: int | None, status: str) -> None:
    # 192.0.2.1 (TEST-NET) is not this machine: nothing to test here, and nothing is contacted.
    assert check_port(host, port).status == status


def test_missing_input_warns_and_writable_output_passes(tmp_path: Path) -> None:
    findings = check_paths(
        {"data.root": "missing", "logs.dir": "runs/new"}, tmp_path, writable={"logs.dir"}
    )
    assert [(f.status, f.message.split(":")[0]) for f in findings] == [("warn", "data.root")]


@pytest.mark.parametrize("inside", ["", "logs"])
def test_output_folder_that_is_or_lies_in_a_file_fails(inside: str, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    findings = check_paths({"logs.dir": str(tmp_path / "afile" / inside)}, tmp_path, writable={"logs.dir"})
    expected = ("fail", f"logs.dir: {tmp_path / 'afile'} is a file, not a folder")
    assert [(f.status, f.message) for f in findings] == [expected]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_and_unreadable_input_fail(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("x")
    locked.chmod(0o500)
    secret.chmod(0o000)
    try:
        findings = check_paths(
            {"ckpt": str(locked / "c"), "data": str(secret)}, tmp_path, writable={"ckpt"}
        )
    finally:
        locked.chmod(0o700)
        secret.chmod(0o600)
    assert [f.status for f in findings] == ["fail", "fail"]


@pytest.mark.parametrize(
    ("backend", "nprocs", "installed", "cvd", "status", "fragment"),
    [
        ("nccl", 4, 2, None, "fail", "4 nccl processes but 2 visible"),
        ("nccl", 1, 0, None, "fail", "none is visible"),
        ("nccl", 2, 4, "0,1", "pass", ""),
        ("nccl", 4, 4, "0,1", "fail", "4 nccl processes but 2 visible"),
        ("nccl", 2, 4, "0,0", "fail", "names a GPU twice"),
        ("nccl", 1, 2, "0,5", "warn", "GPU 5 does not exist here"),  # CUDA uses GPU 0: works
        ("nccl", 2, 2, "0,5", "fail", "2 nccl processes but 1 visible"),
        ("nccl", 2, 2, "GPU-1a2b,GPU-3c4d", "pass", ""),  # UUIDs count as given
        ("nccl", 2, 0, "GPU-1a2b,GPU-3c4d", "fail", "none is visible"),  # no driver: no GPU
        ("nccl", 1, 4, "", "fail", "none is visible"),
        ("nccl", 1, 4, "-1", "fail", "none is visible"),
        ("gloo", 4, 0, None, "pass", ""),
        ("gloo", 4, 4, "0,1", "warn", "gives 2 GPU(s) to 4 processes"),
    ],
)
def test_gpus(backend: str, nprocs: int, installed: int, cvd: str | None, status: str, fragment: str) -> None:
    finding = check_gpus(backend, nprocs, visible_devices(cvd, installed))
    assert finding.status == status and fragment in finding.message


@pytest.mark.parametrize(
    ("omp", "procs", "cpus", "status", "fix"),
    [
        (None, 8, 2, "pass", ""),
        ("1", 2, 2, "pass", ""),
        ("4", 4, 8, "warn", "OMP_NUM_THREADS=2"),
        ("4,2", 4, 4, "warn", "OMP_NUM_THREADS=1"),
        ("four", 1, 4, "warn", "a number"),
    ],
)
def test_threads_warn_only_for_user_values(
    omp: str | None, procs: int, cpus: int, status: str, fix: str
) -> None:
    finding = check_threads(omp, procs, cpus)
    assert finding.status == status and fix in finding.fix


def test_permission_failures_with_access_denied_faked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs as root too: root passes every os.access test, so the denial is faked.
    (tmp_path / "data").mkdir()
    monkeypatch.setattr("launcher.preflight.host.os.access", lambda path, mode: False)
    findings = check_paths({"ckpt": "out", "data": "data"}, tmp_path, writable={"ckpt"})
    assert [(f.status, f.message.split(":")[0]) for f in findings] == [("fail", "ckpt"), ("fail", "data")]
