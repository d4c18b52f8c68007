"""Per-rank data loading: the pipeline behind ``ctx.dataloader`` (``pipeline.py``) and its parts.

Worker side: imports torch, never the launch side."""
