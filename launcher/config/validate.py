"""Merged layers → one frozen ``JobConfig``, validated once against the schema.

One generic validator walks the schema's dataclass fields and type hints, so a
new section needs no new validation code: types, Literals and the ranges
declared on the fields (``launcher.validation``). Errors name the place the
value came from, the dotted key, and the fix. Never imports torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any

from launcher.config.layers import Bases, Layer, Merged, Origins, merge_layers, where
from launcher.config.slurm_rules import slurm_problem
from launcher.errors import ConfigError
from launcher.schema import JobConfig, as_tree, key_of
from launcher.validation import checked, checkpoint_conflict, show, words


def build_config(layers: list[Layer]) -> JobConfig:
    """Merge layers (later wins) and validate once against the schema."""
    return config_of(merge_layers(layers))


def config_of(merged: Merged) -> JobConfig:
    """Merged layers, validated once against the schema."""
    config = typing.cast(JobConfig, _build(JobConfig, merged.tree, (), merged.origins, merged.bases))
    conflict = checkpoint_conflict(config.checkpoint)
    if conflict is not None:
        key, problem, fix = conflict
        raise ConfigError(f"{where(('checkpoint', key), merged.origins)}: checkpoint.{key}: {problem}", fix)
    slurm = slurm_problem(config.slurm, config.checkpoint)
    if slurm is not None:
        key, problem, fix = slurm
        raise ConfigError(f"{where(('slurm', key), merged.origins)}: slurm.{key}: {problem}", fix)
    return config


def check_job(config: JobConfig) -> None:
    """Validate a JobConfig built in code (the API) the same way as one read from YAML."""
    build_config([Layer(as_tree(config), {}, "JobConfig")])


def _build(cls: type, data: Any, prefix: tuple[str, ...], origins: Origins, bases: Bases) -> Any:
    section = ".".join(prefix) or "job"
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where(prefix, origins)}: {section}: expected a mapping, got {show(data)}",
            f"write {section} as indented key: value lines",
        )
    fields = {key_of(f): f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            dotted = (*prefix, str(key))
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(fields)}"
            raise ConfigError(f"{where(dotted, origins)}: {'.'.join(dotted)}: unknown key", hint)
    values: dict[str, Any] = {}
    for key, value in data.items():
        dotted = (*prefix, key)
        name = fields[key].name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(typing.cast(type, hint), value, dotted, origins, bases)
            continue
        values[name] = _checked(value, hint, fields[key], dotted, origins, bases)
    return cls(**values)


def _checked(value: Any, hint: Any, field: dataclasses.Field[Any], dotted: tuple[str, ...], origins: Origins,
             bases: Bases) -> Any:
    key = ".".join(dotted)
    result = checked(value, hint, field, f"{where(dotted, origins)}: {key}", f"set {key} to")
    if field.metadata.get("path") and isinstance(result, str) and result not in words(hint):
        result = _resolve_path(field.name, result, bases.get(dotted))
    return result


def _resolve_path(name: str, value: str, base: Path | None) -> str:
    """Paths in a job file are relative to the file; an entrypoint may also be a module."""
    if base is None:
        return value
    if name == "entrypoint":
        if value.startswith("-m "):
            return value
        head, sep, tail = value.rpartition(":")
        if sep and tail.isidentifier() and head:
            return f"{_join(base, head)}:{tail}" if _is_path_like(head) else value
    return _join(base, value)


def _is_path_like(value: str) -> bool:
    return value.endswith(".py") or "/" in value


def _join(base: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path))
