"""Graph: the DAG of nodes, cycle detection, topological order and selection syntax."""
