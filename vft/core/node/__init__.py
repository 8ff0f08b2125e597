"""Everything that runs on a node: the supervisor, readiness, peers, process trees, logs."""
