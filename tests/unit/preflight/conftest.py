"""The corpus under ``corpus/`` is test data (training scripts to check), never tests to collect."""

collect_ignore = ["corpus"]
