"""What the command line asked for → (JobConfig, Target, args): the one config path.

Layers, lowest first: a cluster preset, the YAML job file, command-line request
(and torchrun's PET_* variables), then ``--set`` overrides. Presets are found
by path, in the working directory's ``cluster_configs/``, or among the
presets shipped with the package (``launcher/config/presets/``, package data).
Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from launcher.config.layers import Layer, flag_layer, merge_layers, override_layer, read_yaml_layer
from launcher.config.request import JobRequest
from launcher.config.validate import config_of
from launcher.errors import ConfigError, UsageError
from launcher.schema import JobConfig, WorldSettings
from launcher.targets import Target, is_yaml, parse_target

SHIPPED_PRESETS = Path(__file__).resolve().parent / "presets"
PRESET_DIRS = (Path("cluster_configs"), SHIPPED_PRESETS)  # the user's project first, then the shipped ones


@dataclass(frozen=True)
class Job:
    config: JobConfig
    target: Target
    args: tuple[str, ...]
    warnings: tuple[str, ...] = ()  # settings the job asked for that the launch will not use
    origins: Mapping[str, str] = field(default_factory=dict)  # dotted key → where it was set ("job.yaml:7", a flag)


def ignored_settings(world: WorldSettings) -> tuple[str, ...]:
    """What ``--standalone`` overrides, as torchrun does: the rendezvous backend and endpoint, the master address.

    ``--rdzv-backend c10d`` is what torchrun's standalone uses anyway: not worth a warning.
    """
    if not world.standalone:
        return ()
    defaults = WorldSettings()
    given = [f"--rdzv-endpoint {world.rdzv_endpoint}" if world.rdzv_endpoint else "",
             f"--rdzv-backend {world.rdzv_backend}" if world.rdzv_backend not in ("static", "c10d") else "",
             f"--master-addr {world.master_addr}" if world.master_addr != defaults.master_addr else "",
             f"--master-port {world.master_port}" if world.master_port is not None else ""]
    ignored = ", ".join(text for text in given if text)
    if not ignored:
        return ()
    return (f"--standalone ignores {ignored}: a standalone job's rendezvous is auto-assigned (a local store on "
            "a free port) and explicitly set values are ignored (drop them, or drop --standalone)",)


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


def load_job(request: JobRequest) -> Job:
    """Build the job's config and target from what the command line asked for."""
    if request.target is None:
        raise UsageError("no target given", "name a script, -m module, module:function or a .yaml job file")
    layers: list[Layer] = []
    yaml_layer = None
    if is_yaml(request.target):
        if request.as_module:
            raise UsageError("-m cannot run a .yaml job", "drop -m, or name a module")
        yaml_layer = read_yaml_layer(Path(request.target))
        if "entrypoint" not in yaml_layer.tree:
            raise ConfigError(f"{request.target}: entrypoint: missing", "add e.g. `entrypoint: train.py:main`")
    else:
        entry = f"-m {request.target}" if request.as_module else request.target
        layers.append(Layer({"entrypoint": entry}, {}, "command line"))
    preset = _preset_layer(request, yaml_layer)
    if preset is not None:
        layers.insert(0, preset)
    if yaml_layer is not None:
        layers.append(yaml_layer)
    layers += [flag_layer(request.values), override_layer(list(request.overrides))]
    merged = merge_layers(layers)
    config = config_of(merged)
    if yaml_layer is not None:
        target = parse_target(str(config.entrypoint))
        args = (*config.args, *request.target_args)
    else:
        target = parse_target(request.target, as_module=request.as_module)
        args = request.target_args
    origins = {".".join(key): origin for key, origin in merged.origins.items()}
    return Job(config, target, tuple(args), ignored_settings(config.world), origins)


def _preset_layer(request: JobRequest, yaml_layer: Layer | None) -> Layer | None:
    if "cluster" in request.values:
        name, base = str(request.values["cluster"][0]), None
    elif yaml_layer is not None and isinstance(yaml_layer.tree.get("cluster"), str):
        name, base = yaml_layer.tree["cluster"], yaml_layer.base
    else:
        return None
    layer = read_yaml_layer(find_preset(name, base))
    if "entrypoint" in layer.tree:
        raise ConfigError(f"{name}: entrypoint: a cluster preset cannot name what to run",
                          "keep entrypoint in the job file")
    return layer
