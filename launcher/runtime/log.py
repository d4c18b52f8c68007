"""The runtime's logger: ``launcher.runtime`` lines go to stderr unless the user configured logging.

Worker side: never imports the launch side.
"""

from __future__ import annotations

import logging
import sys

_NAME = "launcher.runtime"


def get_logger() -> logging.Logger:
    """The runtime's logger; given a one-line stderr handler at INFO if nothing would show it."""
    logger = logging.getLogger(_NAME)
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("launcher: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return logger
