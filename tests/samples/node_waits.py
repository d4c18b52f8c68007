"""The first node's ranks exit at once; the others wait until OUT/release exists (at most a minute).

No process group: the first node's agent then waits in elastic's exit barrier for the other node.
"""
import os
import sys
import time
from pathlib import Path

out = Path(sys.argv[1])
if int(os.environ["GROUP_RANK"]) > 0:
    deadline = time.monotonic() + 60
    while not (out / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
