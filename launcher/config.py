"""YAML job files, ``--set`` overrides and flags → one frozen ``JobConfig``.

One generic validator walks the schema's dataclass fields and type hints, so a
new section needs no new validation code. Every value remembers where it came
from (``train.yaml:7``, ``--set a.b=1``, ``--nproc-per-node``), and errors name
that place, the dotted key, and the fix. Never imports torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from launcher.errors import ConfigError
from launcher.schema import JobConfig

Tree = dict[str, Any]
Origins = dict[tuple[str, ...], str]


@dataclasses.dataclass(frozen=True)
class Layer:
    """Raw settings from one source, with where each leaf came from."""

    tree: Tree
    origins: Origins
    default_origin: str
    base: Path | None = None  # folder that relative paths resolve against


# ---- reading -----------------------------------------------------------------


def read_yaml_layer(path: Path) -> Layer:
    """Read a YAML job file (``yaml.safe_load`` semantics) keeping each key's line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}", "check the path and permissions") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else "?"
        raise ConfigError(f"{path}:{line}: malformed YAML: {error.problem}", "fix the YAML syntax") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: malformed YAML: {error}", "fix the YAML syntax") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of keys at top level", "start the file with `entrypoint: ...`")
    origins: Origins = {}
    if node is not None:
        _collect_lines(node, (), str(path), origins)
    return Layer(data, origins, str(path), base=path.resolve().parent)


def _collect_lines(node: yaml.Node, prefix: tuple[str, ...], name: str, origins: Origins) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            origins[key] = f"{name}:{key_node.start_mark.line + 1}"
            _collect_lines(value_node, key, name, origins)


def override_layer(assignments: list[str]) -> Layer:
    """``--set a.b=value`` assignments; values are parsed as YAML scalars or lists."""
    tree: Tree = {}
    origins: Origins = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {assignment}: expected key.sub=value", "e.g. --set data.batch_size=64")
        dotted = tuple(key.strip().split("."))
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _assign(tree, dotted, value)
        origins[dotted] = f"--set {assignment}"
    return Layer(tree, origins, "--set")


def flag_layer(values: Mapping[str, tuple[Any, str]]) -> Layer:
    """Command-line flags: dotted key → (value, flag name as the user wrote it)."""
    tree: Tree = {}
    origins: Origins = {}
    for dotted_key, (value, flag) in values.items():
        dotted = tuple(dotted_key.split("."))
        _assign(tree, dotted, value)
        origins[dotted] = flag
    return Layer(tree, origins, "command line")


def _assign(tree: Tree, dotted: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in dotted[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[dotted[-1]] = value


# ---- merging and validating ---------------------------------------------------


def build_config(layers: list[Layer]) -> JobConfig:
    """Merge layers (later wins) and validate once against the schema."""
    merged: Tree = {}
    origins: Origins = {}
    bases: dict[tuple[str, ...], Path | None] = {}
    for layer in layers:
        _merge(merged, layer.tree, (), layer, origins, bases)
    config = typing.cast(JobConfig, _build(JobConfig, merged, (), origins, bases))
    _check_ranges(config, origins)
    return config


def _merge(
    into: Tree, tree: Tree, prefix: tuple[str, ...], layer: Layer, origins: Origins, bases: dict[Any, Path | None]
) -> None:
    for key, value in tree.items():
        dotted = (*prefix, str(key))
        origins[dotted] = layer.origins.get(dotted, layer.default_origin)
        bases[dotted] = layer.base
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, dotted, layer, origins, bases)
        else:
            into[key] = value
            if isinstance(value, dict):
                for sub in _leaves(value, dotted):
                    origins[sub] = layer.origins.get(sub, origins[dotted])
                    bases[sub] = layer.base


def _leaves(tree: Tree, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    out = []
    for key, value in tree.items():
        dotted = (*prefix, str(key))
        out.append(dotted)
        if isinstance(value, dict):
            out.extend(_leaves(value, dotted))
    return out


def _where(dotted: tuple[str, ...], origins: Origins) -> str:
    for cut in range(len(dotted), 0, -1):
        if dotted[:cut] in origins:
            return origins[dotted[:cut]]
    return "config"


def _build(cls: type, data: Any, prefix: tuple[str, ...], origins: Origins, bases: dict[Any, Path | None]) -> Any:
    section = ".".join(prefix) or "job"
    if not isinstance(data, dict):
        raise ConfigError(
            f"{_where(prefix, origins)}: {section}: expected a mapping, got {_show(data)}",
            f"write {section} as indented key: value lines",
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            dotted = (*prefix, str(key))
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(fields)}"
            raise ConfigError(f"{_where(dotted, origins)}: {'.'.join(dotted)}: unknown key", hint)
    values: dict[str, Any] = {}
    for name, value in data.items():
        dotted = (*prefix, name)
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(typing.cast(type, hint), value, dotted, origins, bases)
            continue
        coerced = _coerce(value, hint, dotted, origins)
        if fields[name].metadata.get("path") and isinstance(coerced, str):
            coerced = _resolve_path(name, coerced, bases.get(dotted))
        values[name] = coerced
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:  # pragma: no cover - _coerce checks first
        raise ConfigError(f"{_where(prefix, origins)}: {section}: {error}", "check the section") from None


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


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, dict | list) else type(value).__name__


def _coerce(value: Any, hint: Any, dotted: tuple[str, ...], origins: Origins) -> Any:
    ok, result = _try(value, hint)
    if ok:
        return result
    raise ConfigError(
        f"{_where(dotted, origins)}: {'.'.join(dotted)}: expected {_expected(hint)}, got {_show(value)}",
        f"set {'.'.join(dotted)} to {_expected(hint)}",
    )


def _try(value: Any, hint: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            ok, result = _try(value, option)
            if ok:
                return True, result
        return False, None
    if origin is Literal:
        return (value in typing.get_args(hint)), value
    if hint is type(None):
        return value is None, None
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if hint is str:
        if isinstance(value, str):
            return True, value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, str(value)
        return False, None
    if hint is Any:
        return True, value
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, str) and item is str:
            return True, [value]
        if not isinstance(value, list):
            return False, None
        items = [_try(v, item) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            return False, None
        pairs = [(_try(k, key_type), _try(v, value_type)) for k, v in value.items()]
        ok = all(k_ok and v_ok for (k_ok, _), (v_ok, _) in pairs)
        return ok, {k: v for (_, k), (_, v) in pairs}
    return False, None  # pragma: no cover - a schema type this validator does not know


def _expected(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(option) for option in typing.get_args(hint))
    if origin is Literal:
        return " or ".join(repr(v) for v in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, str(hint))


# ---- ranges the type system cannot say ----------------------------------------


def check_job(config: JobConfig) -> None:
    """Validate a JobConfig built in code (the API) the same way as one read from YAML."""
    build_config([Layer(dataclasses.asdict(config), {}, "JobConfig")])


def _check_ranges(config: JobConfig, origins: Origins) -> None:
    """Reject values of the right type but out of range (``nprocs: 0``)."""

    def fail(key: str, message: str, hint: str) -> None:
        raise ConfigError(f"{_where(tuple(key.split('.')), origins)}: {key}: {message}", hint)

    world = config.world
    if isinstance(world.nprocs, int) and world.nprocs < 1:
        fail("world.nprocs", f"must be at least 1, got {world.nprocs}",
             "set world.nprocs to 1 or more, or auto|cpu|gpu")
    if world.max_restarts < 0:
        fail("world.max_restarts", f"must be >= 0, got {world.max_restarts}", "set world.max_restarts to 0 or more")
    if world.master_port is not None and not 0 < world.master_port < 65536:
        fail("world.master_port", f"{world.master_port} is not a TCP port", "use a port in 1..65535")
    if world.shutdown_timeout < 0:
        fail("world.shutdown_timeout", "must be >= 0", "set a grace period in seconds")
    if world.monitor_interval <= 0:
        fail("world.monitor_interval", "must be > 0", "set an interval in seconds, e.g. 0.1")
    if world.node_rank < 0:
        fail("world.node_rank", "must be >= 0", "number nodes from 0")
    monitor = config.monitor
    if monitor.hang_timeout is not None and monitor.hang_timeout <= 0:
        fail("monitor.hang_timeout", "must be > 0", "give the seconds a rank may go without progress")
    if monitor.hang_startup is not None and monitor.hang_startup < 0:
        fail("monitor.hang_startup", "must be >= 0", "give the seconds allowed for start-up")
    data = config.data
    if data.batch_size < 1:
        fail("data.batch_size", f"must be at least 1, got {data.batch_size}", "set data.batch_size per rank")
    if isinstance(data.num_workers, int) and data.num_workers < 0:
        fail("data.num_workers", "must be >= 0 or auto", "set data.num_workers: auto")
