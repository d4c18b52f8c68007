"""The layers of a job's settings: a YAML file, flags, ``--set`` overrides; and their merge.

Every value remembers where it came from (``train.yaml:7``, ``--set a.b=1``,
``--nproc-per-node``) so that an error can name that place. Never imports torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from launcher.errors import ConfigError

Tree = dict[str, Any]
Origins = dict[tuple[str, ...], str]
Bases = dict[tuple[str, ...], Path | None]


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
    except UnicodeDecodeError as error:  # a binary file, or text in another encoding
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start})",
                          "a job file is YAML saved as UTF-8") from None
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as error:  # NUL and other control characters: a binary file
        raise ConfigError(f"{path}: not a text file (character #x{error.character:04x} at offset {error.position})",
                          "a job file is YAML saved as UTF-8") from None
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


# ---- merging -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Merged:
    """Layers merged (later wins): the settings tree, where each key came from, and its base folder."""

    tree: Tree
    origins: Origins
    bases: Bases


def merge_layers(layers: list[Layer]) -> Merged:
    merged: Tree = {}
    origins: Origins = {}
    bases: Bases = {}
    for layer in layers:
        _merge(merged, layer.tree, (), layer, origins, bases)
    return Merged(merged, origins, bases)


def _merge(into: Tree, tree: Tree, prefix: tuple[str, ...], layer: Layer, origins: Origins, bases: Bases) -> None:
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


def where(dotted: tuple[str, ...], origins: Origins) -> str:
    """Where the value at ``dotted`` (or its nearest enclosing key) came from."""
    for cut in range(len(dotted), 0, -1):
        if dotted[:cut] in origins:
            return origins[dotted[:cut]]
    return "config"
