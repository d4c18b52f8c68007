"""``launcher report RUN_DIR``: the recorded sample run drawn, summed up and exported; bad input is one line, exit 2.

The sample (``tests/samples/report_run``, written by its ``generate.py``): 2 ranks over two attempts, rank 1
slower and starved of data, a restart after rank 1's failure, rank 1's file ending in half a line.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from launcher.cli.main import main
from launcher.report.records import read_run
from launcher.report.summary import summarize
from launcher.report.text import render_summary

pytestmark = pytest.mark.timeout(60)
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "report_run"
GOLDEN = Path(__file__).resolve().parent / "sample_summary.txt"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the sample run directory (the report writes its picture into it)."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "run", ignore=shutil.ignore_patterns("*.py", "report.png")))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's header (its IHDR chunk), after checking its signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", head
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_report_draws_the_sample_sums_it_up_and_exports_it_without_torch(sample: Path, launcher: Any) -> None:
    ran = launcher(["report", "run", "--tensorboard", "tb"], cwd=sample.parent,
                   env={"PYTHONPROFILEIMPORTTIME": "1"})  # -X importtime: every import, on stderr
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == GOLDEN.read_text(), ran.stdout
    assert re.search(r"^slowest +rank 1, 28% below the mean", ran.stdout, re.M)
    assert re.search(r"^rank 0 +314\.0 +4% +630\.0 MiB", ran.stdout, re.M)  # the peak memory of rank 0
    assert re.search(r"^hint +rank 1 waits for data 34% of the time: raise data\.num_workers", ran.stdout, re.M)
    assert re.search(r"^restarts +1, at 19\.0 s", ran.stdout, re.M)
    imported = {line.rsplit("|", 1)[1].strip() for line in ran.stderr.splitlines() if line.startswith("import time:")}
    assert {"matplotlib", "tensorboard"} <= imported and not any(name.split(".")[0] == "torch" for name in imported)

    width, height = png_size(sample / "report.png")
    assert (width, height) == (1000, 1180)  # 10 x 11.8 inches at 100 dpi: throughput, loss, lr, data wait, memory
    assert (sample / "report.png").stat().st_size > 30_000  # drawn lines, not an empty canvas

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(sample.parent / "tb"), size_guidance={"tensors": 0})  # 0: every point
    events.Reload()
    tags = events.Tags()["tensors"]
    assert {"rank0/samples_per_s", "rank1/data_wait", "rank1/metrics/loss", "rank0/rss_bytes"} <= set(tags)
    loss = events.Tensors("rank1/metrics/loss")
    records = [json.loads(line) for line in (sample / "metrics" / "rank_1.jsonl").read_text().splitlines()[:-1]]
    assert [point.step for point in loss] == list(range(31))  # the truncated last line is left out
    from tensorboard.util.tensor_util import make_ndarray

    assert [round(float(make_ndarray(point.tensor_proto)), 4) for point in loss] == \
        [record["metrics"]["loss"] for record in records]
    assert [point.wall_time for point in loss] == [record["time"] for record in records]


def test_the_truncated_last_line_is_left_out_and_attempts_stay_in_order() -> None:
    run = read_run(SAMPLE)
    assert SAMPLE.joinpath("metrics", "rank_1.jsonl").read_text().count("\n") == 31  # and half a line after
    assert [len(records) for records in run.ranks.values()] == [33, 31]
    assert [record.attempt for record in run.ranks[1]] == [0] * 16 + [1] * 15
    assert [event.name for event in run.events] == ["start", "failure", "restart", "exit"]


def record(rank: int, attempt: int, time: float, data_wait: float, **extra: Any) -> dict[str, Any]:
    return {"v": 1, "time": time, "rank": rank, "local_rank": rank, "node_rank": 0, "attempt": attempt,
            "elapsed": time - 100.0, "interval": 1.0, "step": 10, "total_steps": None, "epoch": None, "samples": 320,
            "steps_per_s": 10.0, "samples_per_s": 320.0 - 20 * rank, "data_wait": data_wait, "cpu_percent": 99.0,
            "rss_bytes": (500 + 10 * rank) * 2**20, "children_rss_bytes": 0, "gpu": None,
            "metrics": {"loss": 1.0 / time}, "final": False, **extra}


def write_run(folder: Path, ranks: int, data_wait: float, **extra: Any) -> Path:
    """A run directory without events, world or run.json: each rank 3 records of attempt 0, 3 of attempt 1."""
    (folder / "metrics").mkdir(parents=True)
    for rank in range(ranks):
        lines = [record(rank, attempt, 100.0 + 3 * attempt + i + 1, data_wait, **extra)
                 for attempt in (0, 1) for i in range(3)]
        (folder / "metrics" / f"rank_{rank}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


@pytest.mark.parametrize(("data_wait", "hinted"), [(0.25, True), (0.15, False)])
def test_the_data_wait_hint_appears_above_a_fifth_of_the_time_only(
    tmp_path: Path, data_wait: float, hinted: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    gpu = {"index": 0, "memory_used_bytes": 3 * 2**30, "memory_total_bytes": 80 * 2**30, "utilization": 97}
    folder = write_run(tmp_path / "run", 2, data_wait, gpu=gpu)
    assert main(["report", str(folder), "--output", str(tmp_path / "picture.png")]) == 0
    out = capsys.readouterr().out
    assert ("bench-data JOB.yaml" in out) is hinted, out
    assert re.search(rf"^rank 1 +300\.0 +{data_wait:.0%} +510\.0 MiB +3\.0 GiB of 80\.0 GiB$", out, re.M), out
    assert re.search(r"^restarts +1, at 4\.0 s$", out, re.M), out  # from the records' attempts: no events.jsonl
    assert png_size(tmp_path / "picture.png")[0] == 1000


def test_a_large_world_shows_its_slowest_ranks_and_its_fastest(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "run", 12, 0.01)
    text = render_summary(summarize(read_run(folder)), folder, folder / "report.png")
    rows = [line.split()[1] for line in text.splitlines() if re.match(r"rank \d+ ", line)]
    assert rows == ["0", "6", "7", "8", "9", "10", "11"]  # the fastest, then the 6 slowest
    assert "(5 more ranks, between these speeds)" in text and len(text.splitlines()) < 16


def test_a_metric_without_a_value_yet_is_left_out(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "rank_0.jsonl").write_text(_lines(
        {**GOOD, "metrics": {"loss": None, "lr": 0.1}}, {**GOOD, "time": 102.0, "metrics": {"loss": 0.5, "lr": 0.1}}))
    assert summarize(read_run(tmp_path)).metrics == {"loss": (0.5, 0.5), "lr": (0.1, 0.1)}


def _lines(*records: dict[str, Any] | str) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in records)


GOOD = record(0, 0, 101.0, 0.1)


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        (None, "no such folder (give the run directory that the end of the run printed)"),
        ({"events.jsonl": ""}, "run: no metrics/rank_<R>.jsonl files"),
        ({"metrics/rank_0.jsonl": _lines(GOOD, "{not json", GOOD)}, "metrics/rank_0.jsonl:2: not JSON"),
        ({"metrics/rank_0.jsonl": _lines(GOOD, {**GOOD, "samples_per_s": "fast"})},
         "metrics/rank_0.jsonl:2: samples_per_s: expected a number, got \"fast\""),
        ({"metrics/rank_0.jsonl": _lines({k: v for k, v in GOOD.items() if k != "rss_bytes"})},
         "metrics/rank_0.jsonl:1: rss_bytes: missing"),
        ({"metrics/rank_0.jsonl": _lines({**GOOD, "metrics": {"loss": "low"}})},
         "metrics/rank_0.jsonl:1: metrics: loss: expected a number, got \"low\""),
        ({"metrics/rank_1.jsonl": _lines(GOOD)}, "metrics/rank_1.jsonl:1: rank 0 in the file of rank 1"),
        ({"metrics/rank_0.jsonl": _lines({**GOOD, "v": 2})}, "metrics/rank_0.jsonl:1: schema version 2"),
        ({"metrics/rank_0.jsonl": _lines({**GOOD, "attempt": 1}, GOOD)},
         "metrics/rank_0.jsonl:2: attempt 0 after attempt 1"),
        ({"metrics/rank_0.jsonl": _lines(GOOD), "events.jsonl": _lines({"time": 1.0, "event": "start"}, "[1]")},
         "events.jsonl:2: expected a JSON object, got list"),
        ({"metrics/rank_0.jsonl": _lines(GOOD), "run.json": "{\n\"exit_code\": 0,\n"}, "run.json:3: not JSON"),
    ],
    ids=["no-folder", "no-metrics", "not-json", "wrong-type", "missing-field", "metric", "wrong-rank", "version",
         "attempts", "event", "run-json"],
)
def test_bad_input_is_one_line_naming_the_file_and_line(
    tmp_path: Path, files: dict[str, str] | None, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "run"
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("launcher: error: ") and err.count("\n") == 1 and fragment in err, err
    assert not (folder / "report.png").exists()


BLOCKER = """
import sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Missing())
from launcher.cli.main import main
sys.exit(main({args!r}))
"""


@pytest.mark.parametrize(("blocked", "options", "fragment"), [
    ("matplotlib", [], "matplotlib is not installed: launcher report draws with it (pip install 'launcher[report]' "
                       "or pip install matplotlib)"),
    ("tensorboard", ["--tensorboard", "tb"], "tensorboard is not installed: --tensorboard writes its event files "
                                             "(pip install tensorboard)"),
])
def test_a_missing_package_is_one_line_with_the_pip_command(
    sample: Path, blocked: str, options: list[str], fragment: str
) -> None:
    code = BLOCKER.format(blocked=blocked, args=["report", str(sample), *options])
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=sample)
    assert (ran.returncode, ran.stdout, ran.stderr) == (2, "", f"launcher: error: {fragment}\n")
    assert not (sample / "report.png").exists() and not (sample / "tb").exists()  # stopped before writing any


def test_a_picture_that_cannot_be_written_is_one_line(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(sample), "--output", str(sample / "no" / "such" / "report.png")]) == 2
    err = capsys.readouterr().err
    assert err == f"launcher: error: {sample}/no/such/report.png: cannot be written: No such file or directory " \
                  "(choose another place with --output)\n"


def test_ranks_that_keep_pace_have_no_slowest(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "run", 2, 0.01, samples_per_s=320.0)
    text = render_summary(summarize(read_run(folder)), folder, folder / "report.png")
    assert re.search(r"^slowest +none: every rank within 2% of the mean$", text, re.M), text
    uneven = write_run(tmp_path / "uneven", 2, 0.01)  # rank 1 at 300 samples/s, rank 0 at 320
    text = render_summary(summarize(read_run(uneven)), uneven, uneven / "report.png")
    assert re.search(r"^slowest +rank 1, 3% below the mean$", text, re.M), text
