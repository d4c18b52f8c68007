"""Checkpoints: atomic files (``files``), their folder layout (``layout``), the async writer (``writer``).

Worker side: never imports the launch side.
"""
