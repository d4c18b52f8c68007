"""(JobConfig, target, Cluster, HostFacts) → LaunchPlan: the model, its builder, and the ``--dry-run`` text.

Pure: no processes, no sockets, no torch."""
