"""--help and --version: every subcommand, flag sections, rejected flags, check names, the exit-code table."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.cli.flags import FLAGS, GROUPS, UNSUPPORTED, build_parser
from launcher.cli.main import SUBCOMMANDS
from launcher.errors import EXIT_CODES
from launcher.preflight.findings import CHECKS

pytestmark = pytest.mark.timeout(30)
README = Path(__file__).resolve().parents[3] / "README.md"


def _help() -> str:
    return build_parser().format_help()


def _actions_by_group() -> dict[str, list[argparse.Action]]:
    return {group.title or "": group._group_actions for group in build_parser()._action_groups}


def test_the_usage_lines_name_every_subcommand_and_version():
    usage = build_parser().format_usage()
    for name in SUBCOMMANDS:
        assert re.search(rf"python -m launcher {name} \S", usage), name
    assert "python -m launcher --version" in usage


def test_flags_are_shown_in_sections_torchrun_first():
    titles = [group.title for group in build_parser()._action_groups]
    assert [t for t in titles if t in GROUPS] == list(GROUPS)
    by_group = _actions_by_group()
    for flag in FLAGS:
        section = next(title for title, actions in by_group.items()
                       if any(a.dest == flag.dest and a.help != argparse.SUPPRESS for a in actions))
        if flag.unsupported:
            assert section == UNSUPPORTED, flag.names
        else:
            assert section.endswith("(torchrun)") == flag.torchrun, (flag.names, section)


def test_underscore_spellings_parse_but_are_not_listed():
    text = _help()
    assert "--nproc_per_node" not in text.split("\n\n", 2)[2]  # the description names it once, as an example
    assert build_parser().parse_args(["--nproc_per_node", "3", "t.py"]).nproc_per_node == "3"


@pytest.mark.parametrize("flag", [f for f in FLAGS if f.unsupported], ids=lambda f: f.names[0])
def test_every_rejected_torchrun_flag_says_not_supported_yet(flag):
    shown = [a for a in _actions_by_group()[UNSUPPORTED] if a.dest == flag.dest and a.help != argparse.SUPPRESS]
    assert len(shown) == 1 and shown[0].help.startswith("not supported yet: "), flag.names
    if flag.instead:
        assert f"instead: {flag.instead}" in shown[0].help


def test_skip_check_lists_every_check():
    (skip,) = [a for a in build_parser()._actions if a.dest == "skip_check"]
    assert all(name in skip.help for name in CHECKS)


def test_the_help_ends_with_the_exit_code_table():
    epilog = _help().split("exit codes:\n", 1)[1]
    assert [line.split("  ")[1] for line in epilog.splitlines()] == [code for code, _ in EXIT_CODES]


def test_the_readme_table_has_the_same_exit_codes():
    section = README.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = [row.split("|")[1].strip() for row in section.splitlines() if re.match(r"\| \d", row)]
    assert sorted(documented) == sorted(code for code, _ in EXIT_CODES)


def test_help_and_version_do_not_import_torch():
    code = ("import sys\nfrom launcher.cli.main import main\n"
            "for argv in (['--help'], ['--version']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code in (0, None), e.code\n"
            "assert 'torch' not in sys.modules\n")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert ran.returncode == 0, ran.stderr
    version = ran.stdout.strip().splitlines()[-1]
    from importlib import metadata

    from launcher.platforms import installed_torch_version

    expected = f"launcher {metadata.version('launcher')} (torch {installed_torch_version()}, Python "
    assert version.startswith(expected) and installed_torch_version() == metadata.version("torch")
