"""Helpers for testing and benchmarking launched jobs, used by the project's tests and benchmarks alike.

``processes``: tag every process a run starts, find those still alive, wait
for them or kill them. ``cli``: run ``python -m launcher`` as a user would.
``terminal``: run a command under a pseudo-terminal and replay the screen it leaves.
Never imports torch.
"""
