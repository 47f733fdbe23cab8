"""Plan: fingerprints compared with the state store; a frozen plan saying, for every node,
skip / run / incremental and why."""
