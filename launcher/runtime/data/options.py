"""A loader's settings: the job's ``data:`` section, overridden by ``dataloader()`` keywords, checked once.

The keywords that are ``data:`` settings are checked against the schema's
fields (``launcher.validation``: the same types and ranges as in a job file);
every other keyword passes to ``DataLoader`` unchanged. Worker side: never
imports the launch side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from launcher.errors import ConfigError
from launcher.schema import DataSettings
from launcher.validation import check_setting

REFUSED = ("sampler", "batch_sampler", "shuffle_seed")  # the pipeline builds the sampler itself


@dataclass(frozen=True)
class LoaderOptions:
    batch_size: int
    shuffle: bool
    drop_last: bool
    even_shards: Literal["pad", "drop"]
    num_workers: int | Literal["auto"]
    pin_memory: bool | Literal["auto"]
    prefetch_factor: int | None
    persistent_workers: bool | Literal["auto"]


def loader_options(settings: DataSettings, overrides: dict[str, Any], *, eval: bool) -> LoaderOptions:
    """The loader's settings; the keywords it used are removed from ``overrides`` (the rest go to DataLoader).

    Eval loaders default to no shuffling and ``drop_last=False``.
    """
    for refused in REFUSED:
        if refused in overrides:
            raise ConfigError(
                f"dataloader(): {refused}= is not accepted: the pipeline builds the sampler",
                "use shuffle=, even_shards= and eval=, or build a torch DataLoader yourself",
            )
    defaults = {field.name: getattr(settings, field.name) for field in dataclasses.fields(LoaderOptions)}
    if eval:
        defaults.update(shuffle=False, drop_last=False)
    values = {}
    for name, default in defaults.items():
        if name in overrides:
            values[name] = check_setting(DataSettings, name, overrides.pop(name), "dataloader(): data")
        else:
            values[name] = default
    return LoaderOptions(**values)
