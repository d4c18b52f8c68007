"""Rank 0 writes 20000 carriage-return updates, then a 200 kB line without a newline; other ranks one line.

The line passes the output router's 64 KiB bound on an open line: a prefixed console shows it in pieces.
"""
import os
import sys

UPDATES = 20000
LINE_BYTES = 200_000
PIECE = 10_000

if os.environ["RANK"] == "0":
    for step in range(UPDATES):
        sys.stdout.write(f"\rstep {step + 1}/{UPDATES}")
        sys.stdout.flush()
    sys.stdout.write("\n")
    for at in range(0, LINE_BYTES, PIECE):
        sys.stdout.write(str(at // PIECE % 10) * PIECE)  # digits change every 10 KB: a misplaced piece shows
        sys.stdout.flush()
else:
    print("rank 1 is here")
