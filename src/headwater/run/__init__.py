"""Run: executes a frozen plan on an engine (build, ingest, incremental, run-time checks,
the project lock); outcomes are recorded beside the plan."""
