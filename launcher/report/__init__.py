"""``launcher report RUN_DIR``: a run directory's records read back, summed up, drawn and exported.

``records`` reads and validates the files of docs/monitoring.md, ``summary`` turns them into numbers and a
short text, ``plot`` draws them (matplotlib, imported there only), ``scalars`` writes TensorBoard event files.
Offline and launch side: never imports torch.
"""
