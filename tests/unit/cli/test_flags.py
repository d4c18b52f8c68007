"""Flags: torchrun's whole parser, both spellings, PET_* variables, and the YAML grammar."""

from __future__ import annotations

import pytest

from launcher.cli.flags import FLAGS, build_parser, parse_flags
from launcher.errors import UsageError

pytestmark = pytest.mark.timeout(30)


def _option_strings(parser) -> set[str]:
    return {name for action in parser._actions for name in action.option_strings}


def test_every_torchrun_flag_is_known_in_both_spellings():
    from torch.distributed.run import get_args_parser

    theirs = _option_strings(get_args_parser())
    ours = _option_strings(build_parser())
    assert theirs <= ours, sorted(theirs - ours)


def test_torchrun_defaults_are_kept():
    from torch.distributed.run import get_args_parser

    from launcher.schema import WorldSettings

    defaults = {a.dest: a.default for a in get_args_parser()._actions}
    world = WorldSettings()
    assert str(world.nprocs) == defaults["nproc_per_node"]
    assert world.max_restarts == defaults["max_restarts"] and world.role == defaults["role"]
    assert world.rdzv_backend == defaults["rdzv_backend"] and world.rdzv_id == defaults["rdzv_id"]
    assert world.nnodes == defaults["nnodes"] and world.master_addr == defaults["master_addr"]
    assert world.monitor_interval == defaults["monitor_interval"]
    assert world.signals_to_handle == defaults["signals_to_handle"]


@pytest.mark.parametrize("flag", [f for f in FLAGS if f.unsupported])
def test_unsupported_torchrun_flags_are_rejected_by_name(flag):
    argv = [flag.names[-1]] + ([] if flag.kind == "switch" else ["x"]) + ["train.py"]
    with pytest.raises(UsageError, match="not supported by this launcher yet"):
        parse_flags(argv, {})


@pytest.mark.parametrize(("argv", "nprocs"), [
    (["--nproc-per-node", "3", "t.py"], 3),
    (["--nproc_per_node=gpu", "t.py"], "gpu"),
    (["--nprocs", "auto", "t.py"], "auto"),
])
def test_nprocs_spellings(argv, nprocs):
    assert parse_flags(argv, {}).job.values["world.nprocs"][0] == nprocs


def test_pet_variables_fill_unset_flags():
    flags = parse_flags(["--max-restarts", "1", "t.py"], {"PET_NPROC_PER_NODE": "4", "PET_MAX_RESTARTS": "9",
                                                         "PET_STANDALONE": "1"})
    assert flags.job.values["world.nprocs"] == (4, "PET_NPROC_PER_NODE")
    assert flags.job.values["world.max_restarts"] == (1, "--max-restarts")  # the command line wins
    assert flags.job.values["world.standalone"] == (True, "PET_STANDALONE")


def test_script_args_belong_to_the_script():
    flags = parse_flags(["--nprocs", "2", "t.py", "--nprocs", "5", "--", "x"], {})
    assert flags.job.values["world.nprocs"][0] == 2
    assert flags.job.target_args == ("--nprocs", "5", "--", "x")


def test_yaml_target_takes_options_after_it_and_args_after_double_dash():
    flags = parse_flags(["job.yaml", "--nprocs", "2", "--set", "a.b=1", "--dry-run", "--", "--lr", "3"], {})
    assert flags.job.values["world.nprocs"][0] == 2 and flags.job.overrides == ("a.b=1",) and flags.dry_run
    assert flags.job.target_args == ("--lr", "3")


def test_yaml_target_rejects_stray_positionals():
    with pytest.raises(UsageError, match="put the job's own arguments after --"):
        parse_flags(["job.yaml", "extra"], {})


def test_module_switch():
    flags = parse_flags(["-m", "pkg.train", "a"], {})
    assert flags.job.as_module and flags.job.target == "pkg.train" and flags.job.target_args == ("a",)


@pytest.mark.parametrize("argv", [["--nprocs", "2", "--nproc-per-node", "3", "t.py"], ["--nproc", "2", "t.py"],
                                  ["--max-restarts", "many", "t.py"]])
def test_conflicting_or_unknown_flags(argv):
    with pytest.raises(UsageError):
        parse_flags(argv, {})


@pytest.mark.parametrize(("argv", "target", "args", "module"), [
    (["--nproc-per-node", "2", "--", "train.py", "z"], "train.py", ("z",), False),  # torchrun's own tests do this
    (["--nprocs", "2", "--", "train.py", "--nprocs", "5", "--", "x"], "train.py", ("--nprocs", "5", "--", "x"), False),
    (["-m", "--", "pkg.train", "a"], "pkg.train", ("a",), True),
    (["--", "job.yaml", "--lr", "3"], "job.yaml", ("--lr", "3"), False),  # after --, all the job's args
])
def test_a_double_dash_before_the_target_ends_the_options(argv, target, args, module):
    flags = parse_flags(argv, {})
    assert (flags.job.target, flags.job.target_args, flags.job.as_module) == (target, args, module)
    assert flags.job.values.get("world.nprocs", (2,))[0] == 2


def test_a_double_dash_without_a_target_names_no_target():
    assert parse_flags(["--nprocs", "2", "--"], {}).job.target is None  # the CLI says "no target given"
