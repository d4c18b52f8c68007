"""Supervision: run a launch plan on torch.distributed.elastic (``run.run_plan``), stop it cleanly,
and report how every rank ended. Light to import: torch is imported only where the agent runs."""
