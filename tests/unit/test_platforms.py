"""Platform decisions with the platform faked: Linux, macOS and Windows from one Linux box."""

from __future__ import annotations

import pytest

from launcher.errors import PlatformError
from launcher.platforms import (
    backend_for,
    choose_start_method,
    death_signal_available,
    default_mp_start_method,
    libuv_env,
    parse_signals,
    parse_version,
    platform_notes,
    start_method_pickles,
    supports_process_groups,
)

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("requested", "platform", "job_env", "method", "preload"),
    [
        ("auto", "linux", {}, "forkserver", True),
        ("auto", "linux", {"LD_PRELOAD": "/x.so"}, "spawn", False),
        ("auto", "darwin", {}, "spawn", False),
        ("auto", "win32", {}, "spawn", False),
        ("spawn", "win32", {}, "spawn", False),
        ("forkserver", "darwin", {}, "forkserver", True),
        ("fork", "linux", {}, "fork", False),
    ],
)
def test_start_method_per_platform(
    requested: str, platform: str, job_env: dict[str, str], method: str, preload: bool
) -> None:
    choice = choose_start_method(requested, platform, job_env, {})
    assert (choice.method, choice.preload_torch) == (method, preload)


def test_fork_on_macos_is_honoured_with_a_warning_reason() -> None:
    assert "unsafe on macOS" in choose_start_method("fork", "darwin", {}, {}).reason


@pytest.mark.parametrize("requested", ["fork", "forkserver"])
def test_fork_methods_do_not_exist_on_windows(requested: str) -> None:
    with pytest.raises(PlatformError, match="does not exist on Windows") as info:
        choose_start_method(requested, "win32", {}, {})
    assert info.value.exit_code == 2 and "spawn" in info.value.hint


@pytest.mark.parametrize(
    ("platform", "version", "method"),
    [
        ("linux", (3, 11), "fork"),
        ("linux", (3, 14), "forkserver"),
        ("darwin", (3, 11), "spawn"),
        ("win32", (3, 11), "spawn"),
    ],
)
def test_users_own_default_start_method(platform: str, version: tuple[int, int], method: str) -> None:
    assert default_mp_start_method(platform, version) == method


def test_which_start_methods_pickle() -> None:
    assert [start_method_pickles(m) for m in ("spawn", "forkserver", "fork")] == [True, True, False]


@pytest.mark.parametrize(
    ("requested", "platform", "gpus", "nprocs", "backend"),
    [
        ("auto", "linux", 4, 4, "nccl"),
        ("auto", "linux", 2, 4, "gloo"),  # more processes than GPUs: NCCL cannot share
        ("auto", "linux", 0, 2, "gloo"),
        ("auto", "win32", 4, 4, "gloo"),  # no NCCL on Windows
        ("auto", "darwin", 0, 2, "gloo"),
        ("gloo", "linux", 4, 4, "gloo"),
        ("nccl", "linux", 0, 2, "nccl"),  # preflight's check_gpus explains this one
    ],
)
def test_backend_for(requested: str, platform: str, gpus: int, nprocs: int, backend: str) -> None:
    assert backend_for(requested, platform, gpus, nprocs).backend == backend


@pytest.mark.parametrize(("platform", "name"), [("win32", "Windows"), ("darwin", "macOS")])
def test_nccl_where_it_does_not_exist_is_a_platform_error(platform: str, name: str) -> None:
    with pytest.raises(PlatformError, match=f"NCCL does not exist on {name}"):
        backend_for("nccl", platform, 1, 1)


def test_posix_only_process_control_is_off_on_windows() -> None:
    assert supports_process_groups("linux") and supports_process_groups("darwin")
    assert not supports_process_groups("win32")
    assert death_signal_available("linux")
    assert not death_signal_available("darwin") and not death_signal_available("win32")
    assert len(platform_notes("win32")) == 2 and platform_notes("linux") == ()


def test_signal_list_drops_what_windows_lacks_and_rejects_unknown_names() -> None:
    spec = "SIGTERM,SIGINT,SIGHUP,SIGQUIT"
    assert parse_signals(spec, "linux") == ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
    assert parse_signals(spec, "win32") == ("SIGTERM", "SIGINT")
    assert parse_signals("term, int", "darwin") == ("SIGTERM", "SIGINT")
    with pytest.raises(PlatformError, match="unknown signal 'SIGFOO'"):
        parse_signals("SIGFOO", "linux")


@pytest.mark.parametrize(
    ("platform", "version", "job_env", "expected"),
    [
        ("win32", "2.5.1+cu121", {}, {"USE_LIBUV": "0"}),
        ("win32", "2.13.0", {}, {"USE_LIBUV": "0"}),
        ("win32", "2.3.1", {}, {}),  # libuv became the default in 2.4
        ("win32", "2.5.1", {"USE_LIBUV": "1"}, {}),  # the user's value wins
        ("win32", None, {}, {}),
        ("linux", "2.13.0", {}, {}),
        ("darwin", "2.13.0", {}, {}),
    ],
)
def test_libuv_off_only_where_the_build_lacks_it(
    platform: str, version: str | None, job_env: dict[str, str], expected: dict[str, str]
) -> None:
    assert libuv_env(platform, version, job_env) == expected


@pytest.mark.parametrize(
    ("text", "version"), [("2.13.0+cpu", (2, 13)), ("2.4.0a0+git1", (2, 4)), ("2", (2, 0)), ("x", (0, 0))]
)
def test_parse_version(text: str, version: tuple[int, int]) -> None:
    assert parse_version(text) == version
