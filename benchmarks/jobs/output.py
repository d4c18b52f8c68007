"""Writes one kind of output to stdout as fast as Python can; torch-free, run directly or by a launcher.

``output.py cr N STAMP``: N carriage-return progress updates, each flushed (as tqdm does), then a newline.
``output.py line MIB STAMP``: one line of MIB MiB, flushed every 64 KiB, its newline only at the very end.
Writes ``time.time()`` to the file STAMP just before the first byte. Under a launcher, only rank 0 writes.
"""

import os
import sys
import time

PIECE = 65536

if __name__ == "__main__":
    kind, size, stamp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if os.environ.get("RANK", "0") == "0":
        with open(stamp, "w") as out:
            out.write(repr(time.time()))
        if kind == "cr":
            for step in range(size):
                sys.stdout.write(f"\rstep {step:>7}/{size}")
                sys.stdout.flush()
            sys.stdout.write("\n")
        else:
            piece = "x" * PIECE
            for _ in range(size * 1024 * 1024 // PIECE):
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
        sys.stdout.flush()
