"""Numbered lines on every rank, to stdout or stderr, forever or ``--lines N`` of them: a job behind ``| head``."""
import argparse
import itertools
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--stream", choices=("stdout", "stderr"), default="stdout")
parser.add_argument("--lines", type=int, default=0, help="0: forever")
args = parser.parse_args()
rank = int(os.environ["RANK"])
out = getattr(sys, args.stream)
for i in itertools.count() if args.lines == 0 else range(args.lines):
    print(f"line {i} from rank {rank}", file=out, flush=True)
    if args.lines == 0:
        time.sleep(0.001)  # forever, but not filling the disk with log files meanwhile
