"""Helpers for testing distributed code and launched jobs; also the pytest plugin ``launcher.testing``.

``-p launcher.testing`` (or ``pytest_plugins = ["launcher.testing"]``) gives
``@pytest.mark.distributed`` and the ``ctx`` fixture: README, "Testing
distributed code". The hooks live in ``plugin.py``, registered from here when
pytest registers this package, so that importing the package, or ``processes``
and ``cli`` (the project's own test helpers, used by the benchmarks too),
imports neither pytest nor torch. There is no ``pytest11`` entry point: the
plugin is opt-in, so that the ``distributed`` mark and the ``ctx`` fixture never
take over those names in a project that did not ask for them.

The project's own helpers: ``processes`` tags every process a run starts, finds those still alive, waits
for them or kills them; ``cli`` runs ``python -m launcher`` as a user would; ``terminal`` runs a command
under a pseudo-terminal and replays the screen it leaves.
"""

from __future__ import annotations

from typing import Any


def pytest_addhooks(pluginmanager: Any) -> None:
    """pytest registered ``launcher.testing``: register the plugin's hooks and fixture."""
    from launcher.testing import plugin

    if not pluginmanager.is_registered(plugin):
        pluginmanager.register(plugin, "launcher.testing.plugin")
