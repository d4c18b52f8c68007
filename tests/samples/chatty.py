"""Writes to stdout and stderr from every rank: whole lines, a partial line, and a progress bar."""
import os
import sys

rank = int(os.environ["RANK"])
print(f"out line one from {rank}")
sys.stdout.write(f"partial from {rank}")
sys.stdout.flush()
sys.stdout.write(" completed\n")
for step in range(3):
    sys.stderr.write(f"\rprogress {step}/3")
    sys.stderr.flush()
sys.stderr.write("\n")
print(f"[rank{rank}]: already prefixed", file=sys.stderr)
os.write(1, f"raw fd write from {rank}\n".encode())
