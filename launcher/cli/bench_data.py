"""``launcher bench-data job.yaml``: measure loader settings on the job's dataset; ``--write`` keeps the best.

Launch side. torch is imported by the engine (``launcher.bench.sweep``) when it measures.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from launcher.bench.sweep import render_table, run_sweep, stderr_progress
from launcher.config.edit import render_value, write_data_values
from launcher.errors import ConfigError
from launcher.schema import DataSettings


def read_data_settings(yaml_path: str | Path) -> DataSettings:
    """The job file's ``data:`` section, read and validated by the one config loader."""
    from launcher.config.layers import read_yaml_layer
    from launcher.config.validate import build_config

    return build_config([read_yaml_layer(Path(yaml_path))]).data


def load_dataset(spec: str, search_path: Sequence[str | Path] = ()) -> Any:
    """Call the ``module:factory`` function (its module found also in ``search_path``)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"dataset {spec!r}: expected 'module:factory'")
    for folder in search_path:
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"dataset {spec!r}: {e}", "the module must be importable from the job file's folder"
        ) from None
    return factory()


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _bool_list(text: str) -> list[bool]:
    return [x.strip().lower() in ("1", "true", "yes") for x in text.split(",") if x.strip()]


def main(argv: Sequence[str]) -> int:
    """``bench-data``: measure, print the table, optionally write the best setting. Raises LauncherError."""
    parser = argparse.ArgumentParser(prog="launcher bench-data", description="Measure DataLoader settings.")
    parser.add_argument("yaml", metavar="YAML", help="the job file (its data: section is read)")
    parser.add_argument("--dataset", help="module:factory returning the dataset (default: data.dataset)")
    parser.add_argument("--write", action="store_true", help="write the best setting into the job file")
    parser.add_argument("--batch-size", type=int, help="per-rank batch size (default: data.batch_size)")
    parser.add_argument(
        "--workers", type=_int_list, help="num_workers values (default: 0, 1, 2, 4, ... 8 x CPUs)"
    )
    parser.add_argument("--prefetch", type=_int_list, default=[2, 4], help="prefetch_factor values")
    parser.add_argument(
        "--persistent", type=_bool_list, default=[False, True], help="persistent_workers values"
    )
    parser.add_argument("--batches", type=int, default=20, help="batches per timed pass")
    parser.add_argument(
        "--repeats", type=int, default=5, help="kept interleaved rounds (one more is a warm-up)"
    )
    parser.add_argument("--full", action="store_true", help="one interleaved run over the whole grid")
    args = parser.parse_args(list(argv))

    settings = read_data_settings(args.yaml)
    spec = args.dataset or settings.dataset
    if not spec:
        raise ConfigError(
            f"{args.yaml}: no dataset to measure", "set data.dataset: module:factory or --dataset"
        )
    dataset = load_dataset(spec, [Path(args.yaml).resolve().parent, Path.cwd()])
    result = run_sweep(
        dataset,
        batch_size=args.batch_size or settings.batch_size,
        workers=args.workers,
        prefetch=args.prefetch,
        persistent=args.persistent,
        batches=args.batches,
        repeats=args.repeats,
        full=args.full,
        progress=stderr_progress,
    )
    print(render_table(result))
    speedup = f", {result.speedup:.2f}x num_workers=0" if result.speedup else ""
    print(f"best: {result.best.setting.label()}{speedup}")
    if args.write:
        values = result.best.setting.data_values()
        write_data_values(Path(args.yaml), values)
        print(f"updated {args.yaml}: " + ", ".join(f"data.{k}={render_value(v)}" for k, v in values.items()))
    return 0
