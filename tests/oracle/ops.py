"""The operations: plain dicts (JSON-able, so a sequence can be printed, saved and
replayed), a seeded generator, and how to apply the ones that change inputs.

Every operation is concrete (which file, which seed, which value) and applies
deterministically to whatever state it meets; one that no longer makes sense there
(deleting a file that is gone, the last file) does nothing. So any subsequence of a
logged sequence replays, which is what shrinking needs.

Kinds: ``add_file``, ``late_file``, ``delete_file``, ``redeliver``, ``edit_same_size``,
``rename_file``, ``telemetry_drift`` and ``devices`` (source files); ``pg_insert``,
``pg_update``, ``pg_delete`` (the full-load PostgreSQL table), ``pay_insert`` (the
cursor table); ``code`` (set one setting of ``project.CODE``); ``run`` (full, ``--select``,
``--exclude``, ``--full-refresh``; in prod, dev or qa), ``backfill``, ``kill`` (at a random
moment, or at a kill point), ``promote``, ``gc``, ``reset`` (applied by ``machine``).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import project as P

if TYPE_CHECKING:
    from .machine import World

Op = dict[str, Any]
RUN_OPS = ("run", "backfill", "kill", "promote", "gc", "reset")  # touch the warehouse

# TODO(issue 19): updates and deletes on the cursor source (`payments`, cursor =
# "updated_at") are a separate issue; set CURSOR_UPDATES = True (or HW_ORACLE_CURSOR_UPDATES=1)
# once it is fixed, to have the generator emit `pay_update` / `pay_delete` too.
CURSOR_UPDATES = os.environ.get("HW_ORACLE_CURSOR_UPDATES", "") == "1"

# kinds of operation (as ``kind_of`` names them: pg_delete, code:remove_node, run:dev:full,
# telemetry_drift ...) the generator leaves out, to look past a bug already known
WITHOUT = {k.strip() for k in os.environ.get("HW_ORACLE_WITHOUT", "").split(",") if k.strip()}

KILL_NODES = ("telemetry", "devices", "orders", "payments", "stg_telemetry", "daily",
              "daily_region", "orders_merge", "payments_append", "device_totals", "overall",
              "report", "hourly", "monthly")

SELECTIONS = ("stg_telemetry+", "+overall", "daily", "tag:staging", "orders+", "report",
              "+report", "device_totals", "kind:python", "telemetry+", "devices+",
              "daily_region", "payments+", "daily+", "hourly")


def describe(op: Op) -> str:
    """One line, as printed while the sequence is applied."""
    args = " ".join(f"{k}={v}" for k, v in op.items() if k != "op")
    return f"{op['op']} {args}".strip()


def kind_of(op: Op) -> str:
    """The figure an operation counts under (code edits by what they change)."""
    if op["op"] == "code":
        return f"code:{op['kind']}"
    if op["op"] == "run":
        what = "select" if op.get("select") else "exclude" if op.get("exclude") \
            else "full_refresh" if op.get("full_refresh") else "full"
        return f"run:{op['env']}:{what}"
    if op["op"] == "gc":
        return f"gc:keep_{op.get('keep', 1)}"
    if op["op"] == "kill":
        return f"kill:{op['env']}" + (f":at_{op['point']}" if op.get("point") else "")
    if op["op"] == "telemetry_drift":
        return "telemetry_drift:new_files_only" if op.get("new_files_only") \
            else "telemetry_drift"
    if op["op"] == "devices":
        return "devices:schema_drift" if op.get("drift") else "devices:change"
    return op["op"]


# -- generating -----------------------------------------------------------------------


def telemetry_files(root: Path) -> list[Path]:
    return sorted((root / P.TELEMETRY).glob("*.csv"))


def random_ops(rng: random.Random, world: World) -> list[Op]:
    """The next few operations (a dev cycle is several), none of a kind in ``WITHOUT``."""
    while True:
        ops = _random_ops(rng, world)
        if not any(kind_of(op) in WITHOUT or op["op"] in WITHOUT for op in ops):
            return ops


def _random_ops(rng: random.Random, world: World) -> list[Op]:
    code = world.code
    broken = [k for k, v in code.items() if (k, v) in P.BROKEN]
    if broken and rng.random() < 0.3:  # a failure is fixed soon after it appears
        key = rng.choice(broken)
        return [{"op": "code", "key": key, "value": P.CODE[key] if P.CODE[key] != code[key]
                 else P.CHOICES[key][0][0], "kind": "fix"}]
    if world.telemetry_mixed() and rng.random() < 0.25:  # mixed file schemas do not last
        return [{"op": "telemetry_drift", "note": world.note}]
    r = rng.random()
    if r < 0.22:
        return [data_op(rng, world)]
    if r < 0.34:
        return [pg_op(rng)]
    if r < 0.52:
        return [code_op(rng, world)]
    if r < 0.72:
        return [{"op": "run", "env": "prod", "select": None, "full_refresh": False}]
    if r < 0.80:  # dev cycle: an edit, a dev run, maybe a promote, maybe a revert
        edit = code_op(rng, world, allow_broken=False)
        env = rng.choice(["dev", "dev", "qa"])
        ops: list[Op] = [edit, {"op": "run", "env": env, "select": None,
                                "full_refresh": False}]
        if rng.random() < 0.3:
            ops.append({"op": "promote", "from": env})
        if rng.random() < 0.6:
            ops.append({"op": "code", "key": edit["key"], "value": code[edit["key"]],
                        "kind": "revert"})
        return ops
    if r < 0.84:
        run: Op = {"op": "run", "env": rng.choice(["prod", "prod", "dev"]),
                   "select": rng.choice(SELECTIONS), "full_refresh": rng.random() < 0.2}
        if rng.random() < 0.25:  # everything but
            run.update(select=None, exclude=rng.choice(SELECTIONS))
        return [run]
    if r < 0.86:
        day, node = rng.randrange(1, 9), rng.choice(["daily", "daily_region", "hourly",
                                                     "monthly"])
        start, end = f"2026-11-{day:02d}", f"2026-11-{min(day + rng.randrange(1, 4), 10):02d}"
        if node == "monthly":
            start, end = "2026-11-01", "2026-12-01"
        return [{"op": "backfill", "env": rng.choice(["prod", "prod", "dev"]), "node": node,
                 "start": start, "end": end}]
    if r < 0.92:
        kill = {"op": "kill", "env": rng.choice(["prod", "prod", "dev"]),
                "at": round(rng.random(), 3), "full_refresh": rng.random() < 0.15}
        if rng.random() < 0.4:  # exactly between two writes of the run (killpoint.py)
            kill.update(point=rng.choice(["publish", "record_physical"]),
                        node=rng.choice(KILL_NODES))
            del kill["at"]
        return [kill]
    if r < 0.95:
        return [{"op": "promote"}]
    if r < 0.97:
        return [{"op": "gc", "keep": rng.choice([0, 1, 1])}]
    return [{"op": "run", "env": "prod", "select": None, "full_refresh": True}]


def data_op(rng: random.Random, world: World) -> Op:
    r = rng.random()
    seed = rng.randrange(1000)
    if r < 0.25:
        return {"op": "add_file", "day": rng.choice(list(P.DAYS)), "seed": seed,
                "rows": rng.randrange(4, 12)}
    if r < 0.35:
        return {"op": "late_file", "day": rng.choice(list(P.DAYS)), "seed": seed}
    if r < 0.47:
        return {"op": "delete_file", "pick": rng.randrange(100)}
    if r < 0.60:
        return {"op": "redeliver", "pick": rng.randrange(100), "seed": seed,
                "rows": rng.randrange(4, 12)}
    if r < 0.72:
        return {"op": "edit_same_size", "pick": rng.randrange(100), "k": rng.randrange(1, 10)}
    if r < 0.80:
        return {"op": "rename_file", "pick": rng.randrange(100), "to": seed}
    if r < 0.88:
        if world.telemetry_mixed():  # files with and without the column: make them agree
            return {"op": "telemetry_drift", "note": world.note}
        # a delivery from now on carries (or lacks) the column; or every file is rewritten
        return {"op": "telemetry_drift", "note": not world.note,
                "new_files_only": rng.random() < 0.35}
    drift = rng.random() < 0.4
    return {"op": "devices", "seed": seed,
            "model": (not world.model) if drift else world.model, "drift": drift}


def pg_op(rng: random.Random) -> Op:
    r = rng.random()
    seed = rng.randrange(1000)
    if r < 0.3:
        return {"op": "pg_insert", "n": rng.randrange(1, 5), "seed": seed}
    if r < 0.55:
        picks = [rng.randrange(100) for _ in range(rng.randrange(1, 3))]
        return {"op": "pg_update", "picks": picks, "seed": seed}
    if r < 0.75:
        return {"op": "pg_delete", "picks": [rng.randrange(100)]}
    if CURSOR_UPDATES and r < 0.85:  # see the TODO(issue 19) above
        return {"op": rng.choice(["pay_update", "pay_delete"]), "picks": [rng.randrange(100)],
                "seed": seed}
    return {"op": "pay_insert", "n": rng.randrange(1, 4), "seed": seed}


def code_op(rng: random.Random, world: World, *, allow_broken: bool = True) -> Op:
    """A code edit: first the kind of edit (each as likely as the others: a rename of a
    column as often as a switch to a view), then a setting and value of that kind."""
    options: dict[str, list[tuple[str, str]]] = {}
    for key in sorted(P.CHOICES):
        for value, kind in P.CHOICES[key]:
            if value != world.code[key] and (allow_broken or (key, value) not in P.BROKEN):
                options.setdefault(kind, []).append((key, value))
    kind = rng.choice(sorted(options))
    key, value = rng.choice(options[kind])
    return {"op": "code", "key": key, "value": value, "kind": kind}


# -- applying the changes of inputs ----------------------------------------------------


def _write(path: Path, text: str) -> None:
    """A delivery arrives whole (a temporary file renamed into place)."""
    tmp = path.with_name(".tmp-" + path.name)
    tmp.write_text(text)
    os.replace(tmp, path)


def apply_change(op: Op, world: World) -> str:
    """Apply a non-run operation; returns what it did ("" when it did nothing)."""
    root, kind = world.root, op["op"]
    files = telemetry_files(root)
    if kind == "add_file":
        path = root / P.TELEMETRY / f"2026-11-{op['day']:02d}.csv"
        if path.exists():
            return ""
        _write(path, P.telemetry_csv(op["day"], op["seed"], op["rows"], world.note))
        return f"added {path.name}"
    if kind == "late_file":
        path = root / P.TELEMETRY / f"late-{op['day']:02d}-{op['seed']}.csv"
        if path.exists():
            return ""
        _write(path, P.telemetry_csv(op["day"], op["seed"], 2, world.note))
        return f"added {path.name}"
    if kind in ("delete_file", "redeliver", "edit_same_size", "rename_file"):
        if not files:
            return ""
        path = files[op["pick"] % len(files)]
        if kind == "delete_file":
            if len(files) == 1:
                return ""
            path.unlink()
            return f"deleted {path.name}"
        if kind == "redeliver":
            day = _day_of(path)
            _write(path, P.telemetry_csv(day, op["seed"], op["rows"], world.note))
            return f"re-delivered {path.name}"
        if kind == "edit_same_size":
            st = path.stat()
            before = path.read_text()
            after = P.shift_digits(before, op["k"])
            if after == before:
                return ""
            with open(path, "r+") as f:  # in place: same inode, same size
                f.write(after)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            return f"edited {path.name} in place (same size, mtime restored)"
        target = path.with_name(f"moved-{op['to']}-{path.name}")
        if target.exists():
            return ""
        os.rename(path, target)
        return f"renamed {path.name} to {target.name}"
    if kind == "telemetry_drift":
        world.note = op["note"]
        if op.get("new_files_only"):
            return ("files delivered from now on " + ("carry" if world.note else "lack")
                    + " the column note")
        changed = 0
        for i, path in enumerate(files):
            text = path.read_text()
            if text.startswith("device_id,ts,v,note") != world.note:
                _write(path, P.add_note(text, i) if world.note else P.strip_note(text))
                changed += 1
        if not changed:
            return ""
        what = "added" if world.note else "dropped"
        return f"{what} column note in {changed} telemetry file(s)"
    if kind == "devices":
        world.model = op["model"]
        _write(root / "data/devices.csv", P.devices_csv(op["seed"], world.model))
        return "rewrote devices.csv" + (" (model column)" if world.model else "")
    if kind == "pg_insert":
        return f"orders: inserted {world.pg.insert(world.pg.orders, op['n'], op['seed'])}"
    if kind == "pay_insert":
        return f"payments: inserted {world.pg.insert(world.pg.payments, op['n'], op['seed'])}"
    if kind == "pg_update":
        return f"orders: updated {world.pg.update(op['picks'], op['seed'])}"
    if kind == "pg_delete":
        return f"orders: deleted {world.pg.delete(op['picks'])}"
    if kind == "pay_update":  # TODO(issue 19): off by default, see CURSOR_UPDATES
        return f"payments: updated {world.pg.update(op['picks'], op['seed'], world.pg.payments)}"
    if kind == "pay_delete":  # TODO(issue 19): off by default, see CURSOR_UPDATES
        return f"payments: deleted {world.pg.delete(op['picks'], world.pg.payments)}"
    if kind == "code":
        if world.code[op["key"]] == op["value"]:
            return ""
        world.code[op["key"]] = op["value"]
        P.write_code(root, world.code)
        return f"set {op['key']} = {op['value']}"
    raise ValueError(f"not a change: {op}")


def _day_of(path: Path) -> int:
    """The day a telemetry file holds (from its name: ...2026-11-DD.csv or late-DD-S.csv)."""
    name = path.stem
    if "2026-11-" in name:
        return int(name.rsplit("2026-11-", 1)[1][:2])
    return int(name.split("late-", 1)[1][:2])
