"""Virtual environments over shared physical tables: diff, promote, garbage collection.

An environment is only a set of pointers (node -> physical table) in the state
store plus views in its schema. Environments share every physical table whose
fingerprint matches, so creating ``dev`` costs only the nodes that differ, and
promoting it is a pointer swap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from headwater.engines import versioning
from headwater.engines.base import Engine
from headwater.errors import HeadwaterError
from headwater.state.store import PhysicalInfo, StateStore


@dataclass
class NodeDiff:
    node: str
    status: str  # same | changed | only in A | only in B
    rows_a: int | None = None
    rows_b: int | None = None
    added_columns: list[str] = field(default_factory=list)
    removed_columns: list[str] = field(default_factory=list)
    retyped_columns: list[str] = field(default_factory=list)
    content_changed: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def diff(state: StateStore, env_a: str, env_b: str) -> list[NodeDiff]:
    """Per node: schema and row count differences between two environments."""
    a, b = state.published(env_a), state.published(env_b)
    if not a and not b:
        raise HeadwaterError(
            f"neither {env_a!r} nor {env_b!r} has been built",
            hint=f"run `headwater run --env {env_a}`",
        )
    physical = state.all_physical()
    out: list[NodeDiff] = []
    for name in sorted(set(a) | set(b)):
        pa_, pb = a.get(name), b.get(name)
        if pa_ is None or pb is None:
            only = env_a if pb is None else env_b
            pub = pa_ or pb
            info = physical.get(pub.physical or "") if pub else None
            d = NodeDiff(name, f"only in {only}")
            if only == env_a:
                d.rows_a = info.rows if info else None
            else:
                d.rows_b = info.rows if info else None
            out.append(d)
            continue
        ia = physical.get(pa_.physical or "")
        ib = physical.get(pb.physical or "")
        d = NodeDiff(name, "same", ia.rows if ia else None, ib.rows if ib else None)
        if pa_.physical == pb.physical and pa_.fingerprint == pb.fingerprint:
            out.append(d)
            continue
        ca = dict(ia.columns) if ia else {}
        cb = dict(ib.columns) if ib else {}
        d.added_columns = [c for c in ca if c not in cb]
        d.removed_columns = [c for c in cb if c not in ca]
        d.retyped_columns = [f"{c}: {cb[c]} -> {ca[c]}" for c in ca if c in cb and ca[c] != cb[c]]
        d.content_changed = bool(ia and ib and ia.content_fp != ib.content_fp)
        d.status = "changed" if (d.content_changed or d.added_columns or d.removed_columns
                                 or d.retyped_columns or d.rows_a != d.rows_b
                                 or pa_.fingerprint != pb.fingerprint) else "same"
        out.append(d)
    return out


def reconcile_views(state: StateStore, engine: Engine, env: str) -> list[str]:
    """Point each public view of ``env`` at the table the state store says it publishes.

    A run notes each publication in the state store, swaps the node's view, then records
    it: a kill after the swap leaves a note, which is completed here (the record catches
    up with what the environment shows); a kill before it leaves a note that is dropped.
    A view that disagrees with the record otherwise goes back to the record. Returns the
    names whose record or view changed.
    """
    shown = engine.shown(env)
    if shown is None:
        return []
    fixed = state.settle_pending(env, shown)
    for name, pub in sorted(state.published(env).items()):
        now = shown.get(name)
        if (pub.physical is not None and now is not None and now != pub.physical
                and engine.exists(pub.physical)):
            engine.publish(env, name, pub.physical)
            fixed.append(name)
    return fixed


def promote(state: StateStore, engine: Engine, source_env: str, target_env: str) -> list[str]:
    """Point ``target_env`` at every table ``source_env`` publishes; nothing is recomputed."""
    reconcile_views(state, engine, source_env)
    reconcile_views(state, engine, target_env)
    src = state.published(source_env)
    if not src:
        raise HeadwaterError(
            f"environment {source_env!r} has nothing published",
            hint=f"run `headwater run --env {source_env}` first",
        )
    moved: list[str] = []
    current = state.published(target_env)
    for name, pub in sorted(src.items()):
        if pub.physical is None:
            continue  # sinks write on the target's next run
        cur = current.get(name)
        if cur is not None and cur.physical == pub.physical:
            continue
        record: dict[str, Any] = {"node": name, "kind": pub.kind, "fingerprint": pub.fingerprint,
                  "physical": pub.physical, "code_fp": pub.code_fp or "",
                  "data_fp": pub.data_fp, "upstream": pub.upstream}
        state.publish(target_env, **record, staged=True)  # see reconcile_views
        engine.publish(target_env, name, pub.physical)
        state.publish(target_env, **record)
        moved.append(name)
    return moved


def collect_garbage(
    state: StateStore, engine: Engine, *, keep_versions: int = 1, dry_run: bool = False
) -> list[str]:
    """Drop physical tables no environment uses, keeping the newest N others per node.

    What a kept table reads stays too: the base table of a snapshot, the tables a view
    reads. A kept base loses the archived rows no kept version of it shows.
    """
    physical = state.all_physical()
    keep = {
        pub.physical
        for env in state.environments()
        for pub in state.published(env).values()
        if pub.physical
    }
    by_node: dict[str, list[tuple[str, str]]] = {}
    for info in physical.values():
        if info.physical not in keep and info.meta.get("role") != "base":
            by_node.setdefault(info.node, []).append((info.created_at, info.physical))
    for versions in by_node.values():
        versions.sort(reverse=True)
        keep.update(p for _, p in versions[:keep_versions])
    todo = list(keep)
    while todo:  # what kept tables read
        found = physical.get(todo.pop())
        for needed in found.reads if found else []:
            if needed not in keep:
                keep.add(needed)
                todo.append(needed)
    doomed = [p for p in physical if p not in keep]
    # tables in the warehouse that the state store never recorded (a crash mid-build)
    present = engine.physical_tables()

    def owner(p: str) -> str:
        for suffix in ("__rejected", "__quarantine", "__archive"):
            p = p.removesuffix(suffix)
        return p

    orphans = [p for p in present if p not in physical and owner(p) not in physical]
    doomed.extend(p for p in orphans if p not in doomed)
    doomed += [f"{p}{suffix}" for p in list(doomed) for suffix in ("__rejected", "__quarantine")
               if f"{p}{suffix}" in present and f"{p}{suffix}" not in doomed]
    if not dry_run:
        for name in doomed:
            if physical.get(name) is not None and physical[name].meta.get("role") == "base":
                versioning.forget(engine, name)
            engine.drop_physical(name)
            state.forget_physical(name)
        for base, shown in _kept_versions(physical, keep).items():
            if engine.exists(base):
                current = versioning.head(engine, base)
                versioning.vacuum(engine, base, shown | ({current} if current else set()))
    return sorted(doomed)


def _kept_versions(physical: dict[str, PhysicalInfo], keep: set[str]) -> dict[str, set[int]]:
    """Per kept base table, the versions of it that kept snapshots show."""
    out: dict[str, set[int]] = {}
    for name in keep:
        info = physical.get(name)
        if info is not None and info.meta.get("role") == "base":
            out.setdefault(name, set())
    for name in keep:
        info = physical.get(name)
        if info is not None and info.meta.get("base") in out:
            out[info.meta["base"]].add(int(info.meta.get("version", 0)))
    return out
