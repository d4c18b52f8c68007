"""Command line (parsed flags) → (JobConfig, Target, args): the one config path.

Layers, lowest first: a cluster preset, the YAML job file, command-line flags
(and torchrun's PET_* variables), then ``--set`` overrides. Never imports torch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from launcher import hostinfo
from launcher.config import Layer, build_config, flag_layer, override_layer, read_yaml_layer
from launcher.errors import ConfigError, UsageError
from launcher.flags import ParsedFlags
from launcher.plan import HostFacts
from launcher.platforms import current_platform
from launcher.schema import JobConfig
from launcher.targets import Target, is_yaml, parse_target

PRESET_DIRS = (Path("cluster_configs"), Path(__file__).resolve().parent.parent / "cluster_configs")


@dataclass(frozen=True)
class Job:
    config: JobConfig
    target: Target
    args: tuple[str, ...]


def find_preset(name: str, base: Path | None) -> Path:
    """A preset given as a path, or by name from ``cluster_configs/``."""
    candidates = [Path(name)] if Path(name).is_absolute() else [(base or Path.cwd()) / name]
    if not is_yaml(name):
        candidates += [folder / f"{name}.yaml" for folder in PRESET_DIRS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for folder in PRESET_DIRS if folder.is_dir() for p in folder.glob("*.yaml")})
    raise ConfigError(f"cluster: {name}: no such preset", f"give a YAML path or one of: {', '.join(known) or 'none'}")


def load_job(flags: ParsedFlags) -> Job:
    """Build the job's config and target from the parsed command line."""
    if flags.target is None:
        raise UsageError("no target given", "name a script, -m module, module:function or a .yaml job file")
    layers: list[Layer] = []
    yaml_layer = None
    if is_yaml(flags.target):
        if flags.module:
            raise UsageError("-m cannot run a .yaml job", "drop -m, or name a module")
        yaml_layer = read_yaml_layer(Path(flags.target))
        if "entrypoint" not in yaml_layer.tree:
            raise ConfigError(f"{flags.target}: entrypoint: missing", "add e.g. `entrypoint: train.py:main`")
    else:
        entry = f"-m {flags.target}" if flags.module else flags.target
        layers.append(Layer({"entrypoint": entry}, {}, "command line"))
    preset = _preset_layer(flags, yaml_layer)
    if preset is not None:
        layers.insert(0, preset)
    if yaml_layer is not None:
        layers.append(yaml_layer)
    layers += [flag_layer(flags.values), override_layer(list(flags.overrides))]
    config = build_config(layers)
    if yaml_layer is not None:
        target = parse_target(str(config.entrypoint))
        args = (*config.args, *flags.target_args)
    else:
        target = parse_target(flags.target, as_module=flags.module)
        args = flags.target_args
    return Job(config, target, tuple(args))


def _preset_layer(flags: ParsedFlags, yaml_layer: Layer | None) -> Layer | None:
    if "cluster" in flags.values:
        name, base = str(flags.values["cluster"][0]), None
    elif yaml_layer is not None and isinstance(yaml_layer.tree.get("cluster"), str):
        name, base = yaml_layer.tree["cluster"], yaml_layer.base
    else:
        return None
    layer = read_yaml_layer(find_preset(name, base))
    if "entrypoint" in layer.tree:
        raise ConfigError(f"{name}: entrypoint: a cluster preset cannot name what to run",
                          "keep entrypoint in the job file")
    return layer


def host_facts(environ: Mapping[str, str]) -> HostFacts:
    import os

    return HostFacts(
        usable_cpus=hostinfo.usable_cpus(),
        visible_gpus=hostinfo.visible_gpu_count(environ),
        platform=current_platform(),
        environ=dict(environ),
        hostname=hostinfo.hostname(),
        run_id=uuid.uuid4().hex[:12],
        cwd=os.getcwd(),
    )
