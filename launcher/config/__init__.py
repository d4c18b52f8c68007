"""The one config path: a cluster preset, the YAML job file, flags and ``--set`` overrides → a frozen
``JobConfig`` (``job.load_job``), validated against the schema. Never imports torch."""
