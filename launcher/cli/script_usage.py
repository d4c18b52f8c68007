"""Exit code 2 from a rank is the script's own argparse error, not the launcher's: say so, and name a launcher flag
that was written after the target (and so went to the script) when there is one.

The launcher's own exit code 2 means that nothing was started; a rank that exits 2 after printing argparse's
``usage:`` and ``error:`` lines reads the same to a shell. Never imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def script_usage_hint(exitcode: int | None, output: Sequence[str], script_args: Sequence[str] = ()) -> str | None:
    """The fix for a rank that exited 2 with argparse's usage error in its output; None for anything else.

    A launcher flag is named when the error names it, or when the script was given it (``script_args``, what
    followed the target): argparse may report a missing argument first (``--lr is required``)."""
    if exitcode != 2:
        return None
    usage = any(line.lstrip().startswith("usage:") for line in output)
    errors = [line for line in output if re.search(r"(^|: )error: ", line)]
    if not usage or not errors:
        return None
    given = [arg.partition("=")[0] for arg in script_args if arg.startswith("-")]
    ours = [flag for flag in dict.fromkeys([*_FLAG.findall(errors[-1]), *given]) if flag in launcher_flags()]
    if ours:
        one = len(ours) == 1
        return (f"{', '.join(ours)} {'is a launcher flag' if one else 'are launcher flags'}, but came after the "
                f"target and so went to the script: put {'it' if one else 'them'} before the target")
    return ("this exit code 2 came from the script's own argument parser, not from the launcher: check the "
            "script's arguments after the target; launcher flags go before the target")


def launcher_flags() -> frozenset[str]:
    """Every option string of the launcher's command line."""
    from launcher.cli.flags import build_parser

    return frozenset(build_parser()._option_string_actions)
