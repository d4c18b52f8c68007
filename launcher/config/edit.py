"""Write values into a job file's ``data:`` section in place, keeping everything else as the user wrote it.

Only the values written change (located by the YAML parser's marks), so
comments, order and formatting stay. Used by ``launcher bench-data --write``.
Never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from launcher.errors import ConfigError


def render_value(value: Any) -> str:
    """A scalar as YAML writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def updated_yaml(text: str, values: dict[str, Any]) -> str:
    """``text`` with ``data:`` holding ``values``: replaced in place or appended to the section."""
    root = yaml.compose(text)
    if root is None:
        root = yaml.MappingNode("tag:yaml.org,2002:map", [])
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError("job file: the top level is not a mapping")
    data = next((v for k, v in root.value if k.value == "data"), None)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), applied from the end
    missing = dict(values)
    if data is None:
        block = "data:\n" + "".join(f"  {k}: {render_value(v)}\n" for k, v in values.items())
        prefix = "" if not text or text.endswith("\n") else "\n"
        return text + prefix + block
    if isinstance(data, yaml.ScalarNode) and data.value in ("", "null", "~"):
        key = next(k for k, v in root.value if v is data)
        where = text.find("\n", key.end_mark.index)
        where = len(text) if where < 0 else where + 1
        indent = " " * (key.start_mark.column + 2)
        edits.append((where, where, "".join(f"{indent}{k}: {render_value(v)}\n" for k, v in values.items())))
        missing = {}
    elif not isinstance(data, yaml.MappingNode) or data.flow_style:
        raise ConfigError(
            "job file: data: is not a block mapping", "write it as one key per line to use --write"
        )
    else:
        for key, node in data.value:
            if key.value in missing and isinstance(node, yaml.ScalarNode):
                edits.append((node.start_mark.index, node.end_mark.index, render_value(missing.pop(key.value))))
        if missing:
            last = data.value[-1][1].end_mark
            where = last.index if last.column == 0 else text.find("\n", last.index)
            where = len(text) if where < 0 else where + (last.column != 0)
            indent = " " * data.value[0][0].start_mark.column
            add = "".join(f"{indent}{k}: {render_value(v)}\n" for k, v in missing.items())
            if where == len(text) and not text.endswith("\n"):
                add = "\n" + add
            edits.append((where, where, add))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def write_data_values(path: Path, values: dict[str, Any]) -> None:
    """Set ``data.<key>: value`` for each item in the job file at ``path``."""
    path.write_text(updated_yaml(path.read_text(), values))
