"""The plan as data: frozen records of what a run will do with each node, and why.

A plan is computed once (:func:`headwater.plan.planner.build_plan`) and never changed
afterwards: the runner settles pending nodes into *new* records it keeps beside the plan
(:attr:`headwater.run.runner.Runner.settled`), and previews return a new plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from headwater.connectors.filecache import FileDigests

Action = Literal["skip", "publish", "run", "defer"]


@dataclass(frozen=True)
class NodePlan:
    name: str
    kind: str
    action: Action
    reason: str
    fingerprint: str | None = None
    physical: str | None = None
    pending: bool = False  # fingerprint depends on upstreams built in this run
    rebuild: bool = False  # drop an appendable table and load it from scratch
    forced: bool = False  # --full-refresh: built whatever the fingerprints say
    incremental: bool = False  # updated in place; runs when upstream content changed
    backfill: tuple[str, str] | None = None  # window labels [start, end) to recompute
    data_fp: str | None = None
    upstream: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("upstream")
        d.pop("backfill")
        return d

    def but(self, **changes: Any) -> NodePlan:
        """A copy with ``changes`` (the record itself never changes)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Plan:
    env: str
    nodes: tuple[NodePlan, ...]
    identities: dict[str, str]  # content identity of every node known before the run
    # the file digests planning computed: the run's loads reuse them (not serialised)
    file_digests: FileDigests | None = field(default=None, repr=False, compare=False)
    # sources that could not be read while planning: name -> the error a user can act on
    source_errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"env": self.env, "nodes": [n.to_json() for n in self.nodes]}
        if self.source_errors:
            out["source_errors"] = dict(self.source_errors)
        return out

    @property
    def to_run(self) -> list[NodePlan]:
        return [n for n in self.nodes if n.action not in ("skip", "defer")]

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def but(self, **changes: Any) -> Plan:
        """A copy with ``changes``."""
        return replace(self, **changes)
