"""The command line: ``main(argv) -> exit code`` (``main.py``), the torchrun-compatible flags,
the failure summary, ``check`` and ``bench-data``. Never imports torch itself."""
