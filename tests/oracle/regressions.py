"""Operation sequences that broke a rule, kept as regression cases: ``test_oracle``
replays each on a fresh project and requires that no rule breaks.

Each came from a seeded run of the oracle (``found``: the seed and step, or "hand" for
the known bugs written down directly) and was shrunk (``machine.shrink``) or written
minimal by hand from the shrunk form. Add one for every new bug the oracle finds: paste
the "minimal sequence" that ``run_long.py`` (or the CI failure message) prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RUN: dict[str, Any] = {"op": "run", "env": "prod", "select": None, "full_refresh": False}
DEV: dict[str, Any] = {"op": "run", "env": "dev", "select": None, "full_refresh": False}


def code(key: str, value: str, kind: str = "output_change") -> dict[str, Any]:
    return {"op": "code", "key": key, "value": value, "kind": kind}


@dataclass(frozen=True)
class Case:
    name: str
    found: str  # where: "seed S step N" or "hand"
    bug: str  # what differed, and the guess at the cause
    ops: tuple[dict[str, Any], ...]


CASES: tuple[Case, ...] = (
    Case("change_impact_ignores_the_nodes_own_code_change", "seed 2 step 131 (shrunk)",
         "stats' code changed and its upstream stg_telemetry changed only in a column stats"
         " does not read (bucket): the run kept stats' table built by the old code ('reads"
         " none of the changed columns'). runner.py _settle/_reads_nothing_changed never"
         " compare pub.code_fp with the node's code_fp.",
         (DEV, code("stats.variant", "changed"), code("stg.variant", "bucket5"), DEV)),
    Case("change_impact_ignores_the_nodes_own_code_change_prod", "hand, from the above",
         "the same in one env", (RUN, code("stats.variant", "changed"),
                                 code("stg.variant", "bucket5"), RUN)),
    Case("change_impact_compares_the_wrong_upstream_version", "seed 4 step 17 (by hand)",
         "a --select run rebuilt stg_telemetry (a new file) without stats/extra_a; a later"
         " change of stg_telemetry in a column they do not read kept their tables, built"
         " from the version before the new file. runner.py _reads_nothing_changed compares"
         " the upstream's table at the start of this run (published_at_start) with the new"
         " one, not the version the node was built from (pub.upstream[u]); it checks that"
         " only for in-place upstreams.",
         (RUN, {"op": "add_file", "day": 5, "seed": 1, "rows": 6},
          {"op": "run", "env": "prod", "select": "+stg_telemetry", "full_refresh": False},
          code("stg.variant", "bucket5"), RUN)),
    Case("select_star_misses_a_new_upstream_column", "seed 8 step 81 (shrunk: dev, edit, dev)",
         "stg_telemetry gained a column (v2); stg_copy (`SELECT * FROM stg_telemetry`) was"
         " skipped with 'reads none of the changed columns' and still shows the old columns."
         " runner.py _reads_nothing_changed: the columns a node consumes come from lineage"
         " expanded over the upstream's previous columns, so a star reads 'none' of the new"
         " one; a node whose SELECT expands * must run when the upstream's columns change",
         (RUN, code("stg.variant", "addcol", "add_column"), RUN)),
    Case("merge_node_keeps_rows_deleted_upstream", "seed 2 step 233",
         "a row deleted from the Postgres orders table stays in orders_merge (`merge id by"
         " updated_at`) and order_stats: incremental_build._cursor only ever adds rows past"
         " the cursor, and nothing notices the upstream lost rows",
         (RUN, {"op": "pg_delete", "picks": [0]}, RUN)),
    Case("dropped_source_column_stays_published_as_null", "seed 1 step 20",
         "devices.csv lost its column model: the source (and SELECT * of it) keeps publishing"
         " model as NULL (ingest.reconcile, on_schema_change = evolve) where a clean build"
         " has no such column",
         ({"op": "devices", "seed": 1, "model": True, "drift": True}, RUN,
          {"op": "devices", "seed": 1, "model": False, "drift": True}, RUN)),
    Case("csv_files_with_a_new_column_differ_from_a_clean_build", "hand (new drift operation)",
         "from some day on the telemetry CSV files carry an extra column: the file-by-file"
         " loads add it (evolve), a clean build reads every file with one read_csv, which"
         " keeps the first file's columns (the new column is lost). connectors/files.py"
         " _query: union_by_name only for Parquet, not for CSV",
         (RUN, {"op": "telemetry_drift", "note": True, "new_files_only": True},
          {"op": "add_file", "day": 5, "seed": 1, "rows": 5}, RUN)),
    Case("csv_files_losing_a_column_fail_a_clean_build", "hand (new drift operation)",
         "the same the other way round: the first file has the column, a new one lacks it;"
         " the runs succeed, a clean build fails ('Schema mismatch between globbed files')",
         ({"op": "telemetry_drift", "note": True}, RUN,
          {"op": "telemetry_drift", "note": False, "new_files_only": True},
          {"op": "add_file", "day": 5, "seed": 1, "rows": 5}, RUN)),
    Case("column_dropped_from_every_file_stays_after_mixed_files", "seed 14 step 513 (shrunk)",
         "telemetry files with and without the column note (a new delivery lacked it), then"
         " note dropped from every file: the source keeps note as NULL ('missing from the new"
         " data; kept as NULL') where a clean build has no such column. ingest.py: the"
         " columns of the files left unchanged (which lack note) are not what decides; the"
         " previous table's columns are reconciled with the reloaded files",
         ({"op": "telemetry_drift", "note": True, "new_files_only": False},
          {"op": "telemetry_drift", "note": False, "new_files_only": True},
          {"op": "add_file", "day": 5, "seed": 881, "rows": 4}, RUN,
          {"op": "telemetry_drift", "note": False}, RUN)),
    Case("removed_node_stays_published", "seed 1 step 42",
         "a transform removed from the project keeps its view in every env (nothing ever"
         " unpublishes a node that is gone)",
         (RUN, code("extra_a", "off", "remove_node"), RUN)),
    Case("promote_after_a_kill_between_view_and_record", "seed 6 step 468; then by hand",
         "a dev run killed after it swapped a node's view but before the state store recorded"
         " it: dev shows the new table, the state store names the previous one, and"
         " `promote dev` gives prod that previous table (environments.promote reads"
         " state.published(dev); runner._publish swaps the view before recording it). The"
         " seeded run hit it by chance; the kill point makes it certain.",
         (RUN, DEV, {"op": "add_file", "day": 5, "seed": 1, "rows": 5},
          {"op": "kill", "env": "dev", "point": "publish", "node": "telemetry",
           "full_refresh": False},
          {"op": "promote"})),
    Case("postgres_update_missed_by_the_change_marker", "seed 3 step 26",
         "an UPDATE on a Postgres table (no cursor) less than a second after the previous"
         " write on the same connection is not seen by the next run: the marker is count(*)"
         " + pg_stat_user_tables counters, which a backend flushes at most once a second"
         " (and an idle one after ~10 s); connectors/postgres.py data_fingerprint",
         (RUN, {"op": "pg_insert", "n": 1, "seed": 1},
          {"op": "run", "env": "prod", "select": "orders", "full_refresh": False},
          {"op": "pg_update", "picks": [0], "seed": 1}, RUN)),
)

# TODO(issue 19): updates and deletes on a cursor source. Replayed by test_oracle only with
# HW_ORACLE_CURSOR_UPDATES=1 (they fail until issue 19 is done): an updated row is appended
# again (two rows with one id), a deleted one stays.
ISSUE_19_CASES: tuple[Case, ...] = (
    Case("cursor_source_update_appends_a_second_row", "hand",
         "payments (cursor = updated_at): an UPDATE moves updated_at past the cursor, the"
         " next run appends the row again, so the source and payments_append hold the id"
         " twice", (RUN, {"op": "pay_update", "picks": [0], "seed": 3}, RUN)),
    Case("cursor_source_delete_is_never_seen", "hand",
         "payments (cursor = updated_at): a deleted row stays in the source and downstream",
         (RUN, {"op": "pay_delete", "picks": [0], "seed": 3}, RUN)),
)
