"""Running: planning runs from specs, executing one run end to end, sweeps, and the
executors that carry runs out (locally, in processes, on Ray)."""
