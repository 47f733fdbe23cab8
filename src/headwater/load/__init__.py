"""Load: project files -> typed nodes (headwater.toml, sources, transforms, sinks).

Every error carries file:line. Imports core, graph and connectors (to validate source and sink
configuration), never plan, run or the callers."""
