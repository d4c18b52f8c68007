"""The monitor thread: records of the documented schema at the interval, a last record at stop, no thread left,
and the NVML probe found through CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import types
from pathlib import Path

import pytest

from launcher.runtime.gpu_stats import open_gpu_probe, visible_device
from launcher.runtime.meters import Meters
from launcher.runtime.monitor import Identity, Monitor, start_monitor
from launcher.schema import MonitorSettings

DOCS = Path(__file__).resolve().parents[3] / "docs" / "monitoring.md"


def documented_fields() -> set[str]:
    """The fields of the rank record's table in docs/monitoring.md."""
    text = DOCS.read_text()
    table = text[text.index("### `metrics/rank_<R>.jsonl`"):text.index("### `world.jsonl`")]
    names = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", table, flags=re.M):
        names |= set(re.findall(r"`([a-z_]+)`", row))
    return names


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_follow_the_documented_schema_and_the_last_one_is_written_at_stop(tmp_path):
    meters = Meters()
    path = tmp_path / "metrics" / "rank_3.jsonl"
    seen = threading.Event()
    records_before_stop = 3

    class Watched(Monitor):  # tells the test when records were written, so it waits on a condition
        def _write(self, *, final: bool) -> None:
            super()._write(final=final)
            if path.exists() and len(path.read_text().splitlines()) >= records_before_stop:
                seen.set()

    monitor = Watched(str(path), 0.05, Identity(rank=3, local_rank=1, node_rank=1, attempt=2), meters).start()
    for _ in range(10):
        meters.batch(samples=4, waited=0.01)
    meters.step(10, None)
    meters.log({"loss": 1.5})
    assert seen.wait(10)
    meters.step(5, samples=20)
    monitor.stop()
    monitor.stop()  # idempotent
    records = read_records(path)
    assert all(set(record) == documented_fields() for record in records)
    assert [record["final"] for record in records] == [False] * (len(records) - 1) + [True]
    last = records[-1]
    assert (last["rank"], last["local_rank"], last["node_rank"], last["attempt"]) == (3, 1, 1, 2)
    assert last["v"] == 1 and last["step"] == 15 and last["samples"] == 20 and last["metrics"] == {"loss": 1.5}
    assert last["rss_bytes"] > 0 and last["gpu"] is None
    # Rates are per interval: the steps of all records add up to the count.
    assert sum(r["steps_per_s"] * r["interval"] for r in records) == pytest.approx(15, rel=0.02)
    regular = records[1:-1]  # the first waits one interval; the last ends at stop
    assert all(0.03 <= r["interval"] <= 0.5 for r in regular)
    assert [r["elapsed"] for r in records] == sorted(r["elapsed"] for r in records)
    assert not [t for t in threading.enumerate() if t.name == "launcher-monitor"]


def test_data_wait_is_the_share_of_the_interval_spent_waiting(tmp_path, monkeypatch):
    clock = [50.0]
    monkeypatch.setattr("launcher.runtime.monitor.time.monotonic", lambda: clock[0])
    meters = Meters()
    monitor = Monitor(str(tmp_path / "r.jsonl"), 3600, Identity(0, 0, 0, 0), meters)
    monitor.start()
    clock[0] += 2.0
    meters.batch(samples=10, waited=0.5)
    monitor.stop()
    (record,) = read_records(tmp_path / "r.jsonl")
    assert record["interval"] == 2.0 and record["data_wait"] == 0.25 and record["samples_per_s"] == 5.0


def test_a_monitor_that_fails_warns_and_leaves_the_training_alone(tmp_path, caplog):
    monitor = Monitor(str(tmp_path / "r.jsonl"), 0.01, Identity(0, 0, 0, 0), Meters())
    failed = threading.Event()

    def broken(final: bool) -> dict:
        if not final:
            failed.set()
            raise OSError("disk full")
        return {"final": True}

    monitor._record = broken  # type: ignore[method-assign]
    monitor.start()
    assert failed.wait(10)
    with caplog.at_level(logging.WARNING, logger="launcher.runtime"):
        monitor.stop()
    assert "monitor: stopped early: OSError: disk full" in caplog.text


def test_start_monitor_writes_into_the_run_folder_of_the_rank(tmp_path):
    rank_folder = tmp_path / "run" / "attempt_1" / "0"
    rank_folder.mkdir(parents=True)
    environ = {"TORCHELASTIC_ERROR_FILE": str(rank_folder / "error.json"), "RANK": "4", "LOCAL_RANK": "0",
               "GROUP_RANK": "2", "TORCHELASTIC_RESTART_COUNT": "1"}
    assert start_monitor(MonitorSettings(enabled=False), "gloo", environ) is None
    assert start_monitor(MonitorSettings(), "gloo", {"RANK": "0"}) is None  # outside the launcher
    monitor = start_monitor(MonitorSettings(interval=3600), "gloo", environ)
    assert monitor is not None
    monitor.stop()
    (record,) = read_records(tmp_path / "run" / "metrics" / "rank_4.jsonl")
    assert (record["rank"], record["node_rank"], record["attempt"]) == (4, 2, 1)


def test_the_rank_device_is_named_as_cuda_visible_devices_names_it():
    assert visible_device(1, {}) == "1"
    assert visible_device(1, {"CUDA_VISIBLE_DEVICES": "4,6"}) == "6"
    assert visible_device(0, {"CUDA_VISIBLE_DEVICES": "GPU-8a1b, GPU-77ff"}) == "GPU-8a1b"
    with pytest.raises(LookupError):
        visible_device(2, {"CUDA_VISIBLE_DEVICES": "0,1"})


def _fake_nvml(calls: list[tuple[str, object]]) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    nvml.nvmlInit = lambda: calls.append(("init", None))  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: calls.append(("index", i)) or f"h{i}"  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByUUID = lambda u: calls.append(("uuid", u)) or f"h{u}"  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=3 << 30, total=80 << 30)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=87)  # type: ignore[attr-defined]
    return nvml


def test_the_gpu_probe_reads_the_physical_device_behind_the_rank(monkeypatch):
    calls: list[tuple[str, object]] = []
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(calls))
    probe = open_gpu_probe(1, {"CUDA_VISIBLE_DEVICES": "2,5"})
    assert probe is not None and ("index", 5) in calls
    assert probe.sample() == {"index": 1, "memory_used_bytes": 3 << 30, "memory_total_bytes": 80 << 30,
                              "utilization": 87}
    open_gpu_probe(0, {"CUDA_VISIBLE_DEVICES": "GPU-1234"})
    assert ("uuid", "GPU-1234") in calls


def test_without_nvml_there_is_no_probe_and_one_warning(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    with caplog.at_level(logging.WARNING, logger="launcher.runtime"):
        assert open_gpu_probe(0, {}) is None
    assert caplog.text.count("monitor: no GPU figures") == 1


def test_a_record_left_half_written_by_a_killed_attempt_does_not_swallow_the_next(tmp_path):
    path = tmp_path / "rank_0.jsonl"
    path.write_text('{"v":1,"step":3}\n{"v":1,"st')
    Monitor(str(path), 3600, Identity(0, 0, 0, 1), Meters()).start().stop()
    lines = path.read_text().splitlines()
    assert lines[:2] == ['{"v":1,"step":3}', '{"v":1,"st'] and json.loads(lines[2])["attempt"] == 1
