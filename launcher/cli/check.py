"""``launcher check [--as METHOD] [--platform OS] [launch options] TARGET``: the preflight table, nothing started.

``--as spawn`` (or ``--platform macos|windows``) judges the script as it would run
there: what only works because Linux forks becomes a failure. Its own options come
before TARGET; every launch option is accepted too. Never imports torch.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from launcher.cli.flags import FLAGS
from launcher.errors import UsageError

START_METHODS = ("fork", "forkserver", "spawn")
PLATFORMS = {"linux": "linux", "macos": "darwin", "windows": "win32"}
_VALUE_OPTIONS = {name for flag in FLAGS if flag.kind != "switch" for name in flag.names} | {"--set", "--skip-check"}


@dataclass(frozen=True)
class CheckOptions:
    as_method: str | None = None  # judge the user's and the launcher's processes as started this way
    platform: str | None = None  # "linux" | "darwin" | "win32": judge as on that OS
    help: bool = False

    def judged_as(self) -> str:
        """The line above the table when the check judges for another start method or OS ("" otherwise)."""
        names = {value: name for name, value in PLATFORMS.items()}
        parts = [f"started by {self.as_method}"] if self.as_method else []
        parts += [f"on {names[self.platform]}"] if self.platform else []
        return f"judged as if {' and '.join(parts)}" if parts else ""


def split_check_options(args: list[str]) -> tuple[CheckOptions, list[str]]:
    """The check's own options (before TARGET), and the launch arguments that remain."""
    as_method = platform = None
    rest: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        name, has_value, value = token.partition("=")
        if name in ("--as", "--platform"):
            if not has_value:
                if i + 1 >= len(args):
                    raise UsageError(f"{name} needs a value", "see python -m launcher check --help")
                i += 1
                value = args[i]
            if name == "--as":
                as_method = _choice(name, value, START_METHODS)
            else:
                platform = PLATFORMS[_choice(name, value, tuple(PLATFORMS))]
        elif token in ("-h", "--help"):
            return CheckOptions(help=True), []
        elif token == "--" or not token.startswith("-"):
            rest += args[i:]
            break
        else:
            rest.append(token)
            if name in _VALUE_OPTIONS and not has_value and i + 1 < len(args):
                i += 1
                rest.append(args[i])
        i += 1
    if platform == "win32" and as_method in ("fork", "forkserver"):
        raise UsageError(f"--as {as_method}: Windows has only spawn", "use --as spawn with --platform windows")
    return CheckOptions(as_method, platform), rest


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"{name}: {value!r} is not one of {', '.join(choices)}", f"e.g. {name} {choices[-1]}")
    return value


def check_help() -> str:
    """``launcher check --help``: usage, the check's options, and one line per check."""
    from launcher.preflight.findings import CHECK_DESCRIPTIONS

    width = max(map(len, CHECK_DESCRIPTIONS))
    checks = "\n".join(f"  {name.ljust(width)}  {text}" for name, text in CHECK_DESCRIPTIONS.items())
    parser = argparse.ArgumentParser(
        prog="launcher check",
        usage="python -m launcher check [--as METHOD] [--platform OS] [launch options] TARGET [args...]",
        description="Run every preflight check on TARGET and print a table; nothing starts.\n"
        "Exit 2 when a check fails, 0 otherwise. Every launch option is accepted\n"
        "(python -m launcher --help).",
        epilog=f"checks (skip one with --skip-check NAME):\n{checks}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--as", metavar="METHOD", choices=START_METHODS,
                        help="judge as if processes started this way (fork, forkserver, spawn): "
                        "--as spawn shows what fails on macOS and Windows")
    parser.add_argument("--platform", metavar="OS", choices=tuple(PLATFORMS),
                        help="judge as on linux, macos or windows (their default start method)")
    return parser.format_help()
