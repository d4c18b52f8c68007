"""Writes this folder: the run directory of a recorded 2-rank CPU run, as docs/monitoring.md sets it out.

The story: two ranks train with 2 DataLoader workers each, batch size 32. Rank 1 reads its shards from a slow
disk: about 5.6 steps/s against rank 0's 10, and it waits for data a third of the time. At 18.4 s rank 1 fails
with an I/O error; the launcher restarts both ranks (attempt 1), which resume from the checkpoint of step 100
and end at 36.6 s. Rank 1 was killed while writing its last record: its file ends with half a line.

Deterministic (seeded); run it from anywhere: ``python tests/samples/report_run/generate.py``.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
START = 1765022500.0  # the launcher's start event
BATCH = 32
STEPS_PER_S = {0: 10.0, 1: 5.6}
DATA_WAIT = {0: 0.03, 1: 0.33}
CHECKPOINT_STEP = 100
COMMAND = ["python", "-m", "launcher", "--nprocs", "2", "train.yaml"]


def loss_at(step: float, rng: random.Random) -> float:
    return round(0.4 + 1.9 * math.exp(-step / 120) + rng.gauss(0, 0.02), 4)


def lr_at(step: float) -> float:
    return round(0.05 * (1 + math.cos(math.pi * min(step, 400) / 400)), 5)


def attempt_records(rank: int, attempt: int, monitor_start: float, intervals: list[float], first_step: int,
                    rng: random.Random) -> list[dict[str, object]]:
    """One record per interval; the last one is the ``final`` record when the rank stopped cleanly."""
    records: list[dict[str, object]] = []
    elapsed, step, samples = 0.0, 0, 0
    for number, interval in enumerate(intervals):
        elapsed += interval
        steps = max(0, round(STEPS_PER_S[rank] * interval * rng.uniform(0.9, 1.1)))
        step += steps
        samples += steps * BATCH
        rss = 610e6 + 1.6e6 * elapsed * (attempt + 1) - 30e6 * rank + rng.uniform(-2e6, 2e6)
        records.append({
            "v": 1, "time": round(monitor_start + elapsed, 3), "rank": rank, "local_rank": rank, "node_rank": 0,
            "attempt": attempt, "elapsed": round(elapsed, 3), "interval": interval, "step": step,
            "total_steps": 400, "epoch": (first_step + step) // 80, "samples": samples,
            "steps_per_s": round(steps / interval, 2), "samples_per_s": round(steps * BATCH / interval, 1),
            "data_wait": round(min(1.0, max(0.0, DATA_WAIT[rank] + rng.gauss(0, 0.03))), 3),
            "cpu_percent": round(rng.uniform(92, 99), 1), "rss_bytes": int(rss),
            "children_rss_bytes": int(2 * 175e6 + rng.uniform(-1e6, 1e6)), "gpu": None,
            "metrics": {"loss": loss_at(first_step + step, rng), "lr": lr_at(first_step + step)},
            "final": number == len(intervals) - 1 and interval < 1.0,
        })
    return records


def main() -> None:
    rng = random.Random(18)
    lines: dict[int, list[str]] = {0: [], 1: []}
    # attempt 0: the monitors start 2.0 s after the launcher; rank 1 fails at 18.4 s, rank 0 is stopped at 18.6 s
    for rank, intervals in ((0, [1.0] * 16 + [0.6]), (1, [1.0] * 16)):
        lines[rank] += [json.dumps(r) for r in attempt_records(rank, 0, START + 2.0, intervals, 0, rng)]
    # attempt 1: started at 19.0 s, monitors at 21.0 s, resumed from step 100, both stop cleanly at 36.6 s
    attempt_1 = {rank: attempt_records(rank, 1, START + 21.0, [1.0] * 15 + [0.6], CHECKPOINT_STEP, rng)
                 for rank in (0, 1)}
    for rank, records in attempt_1.items():
        lines[rank] += [json.dumps(r) for r in records]
    (HERE / "metrics").mkdir(exist_ok=True)
    (HERE / "metrics" / "rank_0.jsonl").write_text("".join(line + "\n" for line in lines[0]))
    last = lines[1].pop()
    (HERE / "metrics" / "rank_1.jsonl").write_text("".join(line + "\n" for line in lines[1]) + last[:97])

    world = []
    by_attempt = [[json.loads(line) for line in lines[rank]] for rank in (0, 1)]
    pairs = [(r0, r1) for attempt in (0, 1) for r0, r1 in zip(*([r for r in by_attempt[rank] if r["attempt"] == attempt]
                                                              for rank in (0, 1)))]
    for records in map(list, pairs):
        rates = [float(r["samples_per_s"]) for r in records]  # type: ignore[arg-type]
        waits = [float(r["data_wait"]) for r in records]  # type: ignore[arg-type]
        mean = sum(rates) / 2
        slow = min(range(2), key=lambda i: rates[i])
        starved = max(range(2), key=lambda i: waits[i])
        world.append({
            "v": 1, "time": round(float(records[0]["time"]) + 0.1, 3), "ranks": 2,  # type: ignore[arg-type]
            "step": {"min": min(r["step"] for r in records), "mean": sum(r["step"] for r in records) / 2,  # type: ignore
                     "max": max(r["step"] for r in records)},  # type: ignore
            "samples_per_s": {"min": min(rates), "mean": round(mean, 1), "max": max(rates)},
            "data_wait": {"min": min(waits), "mean": round(sum(waits) / 2, 3), "max": max(waits)},
            "slowest": {"rank": slow, "samples_per_s": rates[slow], "ratio": round(rates[slow] / mean, 3)}
            if mean and rates[slow] / mean < 0.8 else None,
            "starved": {"rank": starved, "data_wait": waits[starved]} if waits[starved] > 0.2 else None,
        })
    (HERE / "world.jsonl").write_text("".join(json.dumps(w) + "\n" for w in world))

    events = [
        {"time": START, "event": "start", "world_size": 2, "nodes": 1, "command": COMMAND},
        {"time": START + 18.4, "event": "failure", "rank": 1, "exit_code": 1,
         "message": "OSError: [Errno 5] Input/output error: '/data/shards/shard-07.bin'"},
        {"time": START + 19.0, "event": "restart", "number": 1, "why": "rank 1 failed (exit code 1)"},
        {"time": START + 37.2, "event": "exit", "exit_code": 0, "wall_time": 37.2},
    ]
    (HERE / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    run = {"command": COMMAND, "world": {"nprocs": 2, "nnodes": "1"}, "start": START, "wall_time": 37.2,
           "exit_code": 0}
    (HERE / "run.json").write_text(json.dumps(run, indent=2) + "\n")


if __name__ == "__main__":
    main()
