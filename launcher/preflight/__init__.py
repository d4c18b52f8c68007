"""Preflight: judge a launch plan against the world before anything starts (``checks.run_static_checks``).

Never imports torch or the user's code."""
