"""Writes the records a rank's monitor writes (docs/monitoring.md) itself: the launcher's side of monitoring alone.

Each rank runs ``--steps`` steps of ``--step-time`` seconds (``--slow-rank`` takes ``--slow-factor`` times as
long), appends a record to ``<run folder>/metrics/rank_<RANK>.jsonl`` every ``--interval`` seconds and a
final one at the end; rank 0 prints a line every ``--say-every`` steps. The run folder holds
``attempt_<n>/<local rank>/error.json``, the file elastic names in TORCHELASTIC_ERROR_FILE.
"""
import argparse
import json
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=40)
parser.add_argument("--step-time", type=float, default=0.05)
parser.add_argument("--slow-rank", type=int, default=-1)
parser.add_argument("--slow-factor", type=float, default=2.0)
parser.add_argument("--interval", type=float, default=0.25)
parser.add_argument("--say-every", type=int, default=10)
args = parser.parse_args()

BATCH = 32
rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
run_folder = os.path.dirname(os.path.dirname(os.path.dirname(os.environ["TORCHELASTIC_ERROR_FILE"])))
os.makedirs(os.path.join(run_folder, "metrics"), exist_ok=True)
step_time = args.step_time * (args.slow_factor if rank == args.slow_rank else 1.0)
started = last_time = time.time()
last_step = 0


def record(out, step: int, final: bool) -> None:
    global last_time, last_step
    now = time.time()
    interval = max(now - last_time, 1e-6)
    fields = {
        "v": 1, "time": now, "rank": rank, "local_rank": local_rank, "node_rank": 0,
        "attempt": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")), "elapsed": now - started,
        "interval": interval, "step": step, "total_steps": args.steps, "epoch": 0, "samples": step * BATCH,
        "steps_per_s": (step - last_step) / interval, "samples_per_s": (step - last_step) * BATCH / interval,
        "data_wait": 0.0, "cpu_percent": 1.0, "rss_bytes": 1, "children_rss_bytes": 0, "gpu": None,
        "metrics": {"loss": 1.0 / (step + 1)}, "final": final,
    }
    out.write(json.dumps(fields) + "\n")
    out.flush()
    last_time, last_step = now, step


with open(os.path.join(run_folder, "metrics", f"rank_{rank}.jsonl"), "a") as out:
    for step in range(1, args.steps + 1):
        time.sleep(step_time)
        if time.time() - last_time >= args.interval:
            record(out, step, final=False)
        if rank == 0 and step % args.say_every == 0:
            print(f"worker line at step {step} of rank {rank}", flush=True)
    record(out, args.steps, final=True)
