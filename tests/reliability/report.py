"""Run the long forms of the reliability suite and publish the figures.

    python tests/reliability/report.py                    # everything, ~45-80 minutes
    python tests/reliability/report.py --write docs/RELIABILITY.md
    python tests/reliability/report.py --kills 8 --fuzz 200 --oracle-ops 100   # a quick look

Each figure comes from a real run, with the command that reproduces it:

- kills: ``tests/killharness.py`` (the 50-model incremental project with a Postgres
  source, then the layered one): attempts, kills that landed while the process ran,
  how many of those were inside its run / after a node was built, kills survived;
- faults: the end-to-end fault tests (tests/reliability/test_faults.py) and the
  connector fault tests they build on: faults injected, faults survived;
- bad inputs: the corpus (tests/e2e/test_bad_input.py) and the loader fuzz
  (tests/reliability/test_fuzz_loader.py): inputs tried, inputs handled;
- concurrency and injection scenarios passed;
- secrets: artefacts scanned and occurrences found;
- oracle: ``tests/oracle/run_long.py`` (random changes of files, code, PostgreSQL rows and
  environments, runs, ``--select`` runs, kills, promote, gc; after every completed run
  each published table compared with a clean build): operations per kind, comparisons,
  mismatches, each with a minimal operation sequence.

``--write FILE`` replaces the block between ``<!-- figures:start -->`` and
``<!-- figures:end -->`` in FILE with the table; ``--json FILE`` saves the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

# fault injected -> the test that injects it and checks what must hold afterwards
FAULTS: list[tuple[str, str]] = [
    ("Postgres down at start (connection refused): only its branch fails, loads once when back",
     "tests/reliability/test_faults.py::test_database_down_at_start_fails_only_its_branch_then_loads_once"),
    ("Postgres connection cut mid-read: retried, every row once",
     "tests/reliability/test_faults.py::test_connection_killed_mid_read_is_retried_and_loads_every_row_once"),
    ("Postgres connection cut on every attempt: previous version and cursor kept",
     "tests/reliability/test_faults.py::test_connection_killed_on_every_attempt_keeps_the_previous_version_and_cursor"),
    ("Postgres down while writing a sink: node published, sink retried next run",
     "tests/reliability/test_faults.py::test_postgres_sink_with_the_database_down_publishes_the_node_and_retries_later"),
    ("HTTP 500, 429, truncated body, timeout, then forever 500: retried; cursor kept",
     "tests/reliability/test_faults.py::test_http_faults_are_retried_and_the_cursor_only_moves_on_success"),
    ("S3 endpoint unreachable (source): only its branch fails",
     "tests/reliability/test_faults.py::test_s3_unreachable_fails_only_its_branch"),
    ("S3 endpoint down while writing a sink, then back",
     "tests/reliability/test_faults.py::test_s3_sink_down_then_back"),
    ("Disk full mid-file writing a sink: previous file intact, no temp left, retried",
     "tests/reliability/test_faults.py::test_disk_full_mid_file_keeps_the_previous_output_and_retries_next_run"),
    ("Sink folder is a regular file (write error even for root)",
     "tests/reliability/test_faults.py::test_sink_folder_that_is_a_file_fails_then_is_retried_when_fixed"),
    ("Postgres backend killed mid-read (connector), both drivers",
     "tests/integration/test_postgres.py::test_connection_killed_mid_read_then_retry_loses_nothing"),
    ("Postgres unreachable: transient, password hidden (connector)",
     "tests/integration/test_postgres.py::test_connection_failure_is_transient_and_hides_the_password"),
    ("Postgres sink failing mid-load leaves the old table",
     "tests/integration/test_postgres.py::test_failure_mid_load_leaves_the_old_table"),
    ("MySQL connection killed mid-read (connector)",
     "tests/integration/test_mysql.py::test_connection_killed_mid_read_then_retry_loses_nothing"),
    ("MySQL unreachable: transient, password hidden (connector)",
     "tests/integration/test_mysql.py::test_connection_failure_is_transient_and_hides_the_password"),
    ("MySQL sink failing mid-load leaves the old table",
     "tests/integration/test_mysql.py::test_failure_mid_load_leaves_the_old_table"),
    ("HTTP 429 with Retry-After seconds",
     "tests/integration/test_http_source.py::test_429_with_retry_after_seconds_then_success"),
    ("HTTP 503 with Retry-After date",
     "tests/integration/test_http_source.py::test_503_with_retry_after_http_date_then_success"),
    ("HTTP 500s with exponential backoff",
     "tests/integration/test_http_source.py::test_500s_then_success_backs_off_exponentially"),
    ("HTTP 500 forever: gives up, no secret in the error",
     "tests/integration/test_http_source.py::test_500_forever_gives_up_with_a_transient_error_and_no_secret"),
    ("HTTP truncated body",
     "tests/integration/test_http_source.py::test_truncated_body_is_retried_then_reported"),
    ("HTTP invalid JSON",
     "tests/integration/test_http_source.py::test_invalid_json_is_retried_and_can_recover"),
    ("HTTP connection refused",
     "tests/integration/test_http_source.py::test_connection_refused_is_transient"),
    ("S3 unreachable endpoint (connector)",
     "tests/integration/test_s3.py::test_unreachable_endpoint_is_transient_and_has_no_secret"),
    ("S3 missing bucket (source)",
     "tests/integration/test_s3.py::test_missing_bucket_is_a_clear_error"),
    ("S3 missing bucket (sink)",
     "tests/integration/test_s3.py::test_sink_to_a_missing_bucket"),
    ("Source failing transiently, then passing (retries)",
     "tests/integration/test_ingest.py::test_transient_failures_are_retried"),
    ("Source failing past its retries publishes nothing",
     "tests/integration/test_ingest.py::test_transient_failure_after_retries_publishes_nothing"),
    ("kill -9 of a scheduler-driven run's process: SIGTERM finishes the run",
     "tests/integration/test_scheduler_sigterm.py::test_sigterm_mid_run_finishes_the_run_and_exits_cleanly"),
    ("Notify webhook unreachable: logged, never raised",
     "tests/integration/test_scheduler.py::test_webhook_unreachable_is_logged_not_raised"),
]


def sh(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 7200
       ) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, text=True,
                          capture_output=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t0


def pytest_cases(args: list[str], env: dict[str, str] | None = None
                 ) -> tuple[dict[str, str], float]:
    """Run pytest; test id -> passed | failed | skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        _, out, seconds = sh([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              f"--junitxml={xml}", *args], env)
        if not xml.exists():
            raise RuntimeError(out[-3000:])
        outcome = {}
        for case in ET.parse(xml).getroot().iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            kinds = {child.tag for child in case}
            outcome[name] = ("failed" if kinds & {"failure", "error"} else
                             "skipped" if "skipped" in kinds else "passed")
    return outcome, seconds


def count(outcome: dict[str, str], state: str, contains: str = "") -> int:
    return sum(1 for k, v in outcome.items() if v == state and contains in k)


def run_kills(kills: int, seed: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from killharness import default_pg, incremental_kill_test, kill_test

    pg = default_pg()
    t0 = time.perf_counter()
    inc = incremental_kill_test(ROOT / "bench/.work/kill-incremental", kills=kills, seed=seed,
                                rows=60_000, pg_dsn=pg,
                                log=lambda m: print("  " + m, flush=True))
    inc["command"] = f"python tests/killharness.py --kills {kills} --seed {seed}"
    inc["seconds"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    layered = kill_test(ROOT / "bench/.work/kill-layered", kills=kills, seed=seed)
    layered["command"] = (f"python tests/killharness.py --project layered --kills {kills}"
                          f" --seed {seed}")
    layered["seconds"] = round(time.perf_counter() - t0, 1)
    return {"incremental": inc, "layered": layered}


def run_oracle(ops: int, seed: int) -> dict[str, Any]:
    """The oracle's long form in its own process (its JSON figures, also when a rule broke)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "oracle.json"
        cmd = [PY, "tests/oracle/run_long.py", "--ops", str(ops), "--seed", str(seed),
               "--json", str(out), "--quiet", "--work", str(ROOT / "bench/.work/oracle")]
        code, text, seconds = sh(cmd, timeout=4 * 3600)
        if not out.exists():
            raise RuntimeError(text[-3000:])
        figures: dict[str, Any] = json.loads(out.read_text())
    figures["exit"] = code
    figures["seconds"] = round(seconds, 1)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fuzz", type=int, default=3000, help="loader fuzz examples")
    ap.add_argument("--oracle-ops", type=int, default=2000,
                    help="operations of the whole-system oracle (tests/oracle/run_long.py)")
    ap.add_argument("--write", type=Path, default=None, help="markdown file to update")
    ap.add_argument("--json", type=Path, default=None, help="save the raw figures")
    ap.add_argument("--resume", action="store_true",
                    help="keep the sections already in the --json file, run the others")
    args = ap.parse_args()
    figures: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d"),
                               "machine": f"{os.cpu_count()} cores, {sys.platform}"}
    if args.resume and args.json and args.json.exists():
        figures.update(json.loads(args.json.read_text()))

    def save() -> None:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(figures, indent=2, default=str))

    def corpus() -> dict[str, Any]:
        got, secs = pytest_cases(["tests/e2e/test_bad_input.py", "-k", "test_bad_input["])
        return {"tried": len(got), "handled": count(got, "passed"),
                "failed": [k for k, v in got.items() if v != "passed"],
                "seconds": round(secs, 1), "command": "pytest tests/e2e/test_bad_input.py"}

    def fuzz() -> dict[str, Any]:
        got, secs = pytest_cases(["tests/reliability/test_fuzz_loader.py"],
                                 {"HW_FUZZ_EXAMPLES": str(args.fuzz), "HW_FUZZ_RANDOM": "1"})
        return {"tried": args.fuzz,
                "handled": args.fuzz if got and count(got, "passed") == len(got) else 0,
                "seconds": round(secs, 1),
                "command": f"HW_FUZZ_EXAMPLES={args.fuzz} HW_FUZZ_RANDOM=1 "
                           "pytest tests/reliability/test_fuzz_loader.py"}

    def faults() -> dict[str, Any]:
        got, secs = pytest_cases([t for _, t in FAULTS])
        rows = []
        for what, test in FAULTS:
            states = [v for k, v in got.items()
                      if k.split("::")[-1].split("[")[0] == test.split("::")[-1]]
            rows.append({"fault": what, "test": test, "runs": len(states),
                         "survived": sum(s == "passed" for s in states)})
        return {"rows": rows, "injected": sum(r["runs"] for r in rows),
                "survived": sum(r["survived"] for r in rows), "seconds": round(secs, 1),
                "command": "pytest tests/reliability/test_faults.py + the connector"
                           " tests listed below"}

    def scenarios(path: str) -> dict[str, Any]:
        got, secs = pytest_cases([path])
        return {"scenarios": len(got), "passed": count(got, "passed"),
                "seconds": round(secs, 1), "command": f"pytest {path}"}

    def secrets() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "secrets.json"
            got, secs = pytest_cases(["tests/reliability/test_secrets.py"],
                                     {"HW_RELIABILITY_OUT": str(out)})
            scanned = json.loads(out.read_text()) if out.exists() else {}
        return {**scanned, "passed": count(got, "passed"), "tests": len(got),
                "seconds": round(secs, 1), "command": "pytest tests/reliability/test_secrets.py"}

    sections = [
        ("corpus", "bad-input corpus", corpus),
        ("fuzz", f"loader fuzz, {args.fuzz} examples", fuzz),
        ("faults", "faults", faults),
        ("concurrency", "concurrency",
         lambda: scenarios("tests/reliability/test_concurrency.py")),
        ("injection", "injection", lambda: scenarios("tests/reliability/test_injection.py")),
        ("secrets", "secrets", secrets),
        ("kills", f"kill -9, {args.kills} kills per project",
         lambda: run_kills(args.kills, args.seed)),
        ("oracle", f"whole-system oracle, {args.oracle_ops} operations",
         lambda: run_oracle(args.oracle_ops, args.seed)),
    ]
    for key, title, run in sections:
        if key in figures:
            print(f"{title}: kept from {args.json}", flush=True)
            continue
        print(f"{title} ...", flush=True)
        figures[key] = run()
        save()

    text = render(figures)
    print(text)
    if args.write:
        doc = args.write.read_text()
        start, end = "<!-- figures:start -->", "<!-- figures:end -->"
        head, _, rest = doc.partition(start)
        _, _, tail = rest.partition(end)
        args.write.write_text(f"{head}{start}\n{text}\n{end}{tail}")
    problems = (figures["kills"]["incremental"]["problems"] + figures["kills"]["layered"]
                ["problems"] + figures["corpus"]["failed"]
                + figures["oracle"]["mismatch_details"])
    sys.exit(1 if problems or figures["secrets"].get("occurrences", 1) else 0)


def render(f: dict[str, Any]) -> str:
    inc, lay = f["kills"]["incremental"], f["kills"]["layered"]
    c, z, fa, s = f["corpus"], f["fuzz"], f["faults"], f["secrets"]
    co, inj = f["concurrency"], f["injection"]
    sources = "files + Postgres" if inc["postgres"] else "files only: no Postgres server"
    lines = [
        f"Measured {f['date']} on {f['machine']} by `python tests/reliability/report.py`.",
        "",
        "| what | tried | survived / handled | problems | reproduce |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| kill -9, 50-model incremental project ({sources}) "
        f"| {inc['attempts']} attempts, {inc['kills']} landed ({inc['mid_run']} inside the run, "
        f"{inc['mid_build']} after a node was built) | {inc['survived']} of {inc['kills']} "
        f"| {len(inc['problems'])} | `{inc['command']}` |",
        f"| kill -9, 24-model layered project | {lay['attempts']} attempts, {lay['kills']} landed "
        f"| {lay['kills'] if not lay['problems'] else 'see problems'} of {lay['kills']} "
        f"| {len(lay['problems'])} | `{lay['command']}` |",
        f"| faults injected (end to end and per connector) | {fa['injected']} | {fa['survived']} "
        f"| {fa['injected'] - fa['survived']} | `python tests/reliability/report.py` (below) |",
        f"| bad-input corpus | {c['tried']} | {c['handled']} | {len(c['failed'])} "
        f"| `{c['command']}` |",
        f"| loader fuzz (random project trees) | {z['tried']} | {z['handled']} "
        f"| {z['tried'] - z['handled']} | `{z['command']}` |",
        f"| concurrency scenarios | {co['scenarios']} | {co['passed']} "
        f"| {co['scenarios'] - co['passed']} | `{co['command']}` |",
        f"| injection scenarios | {inj['scenarios']} | {inj['passed']} "
        f"| {inj['scenarios'] - inj['passed']} | `{inj['command']}` |",
        f"| secrets: artefacts scanned ({s.get('bytes', 0):,} bytes) | {s.get('artefacts', 0)} "
        f"| — | **{s.get('occurrences', '?')} occurrences** | `{s['command']}` |",
    ]
    if "oracle" in f:
        o = f["oracle"]
        lines.append(
            f"| whole-system oracle: published tables vs a clean build after random changes,"
            f" runs, failures and kills (files + Postgres) | {o['ops']} operations,"
            f" {o['comparisons']} comparisons ({o['tables_compared']} tables), {o['kills']}"
            f" kills | {o['comparisons'] + o['rule_checks']} checks made"
            f" ({o['distinct_mismatches']} distinct rules broken) | {o['mismatches']}"
            f" | `{o['command']}` |")
    lines += [
        "",
        "Faults injected:",
        "",
        "| fault | survived | test |",
        "| --- | ---: | --- |",
    ]
    for r in fa["rows"]:
        lines.append(f"| {r['fault']} | {r['survived']}/{r['runs']} | `{r['test']}` |")
    if "oracle" in f:
        lines += ["", *render_oracle(f["oracle"])]
    return "\n".join(lines)


def render_oracle(o: dict[str, Any]) -> list[str]:
    """The oracle's figures: operations per kind, comparisons, each mismatch."""
    kinds = ", ".join(f"{k} {v}" for k, v in o["ops_per_kind"].items())
    lines = [
        f"Whole-system oracle (`{o['command']}`, {o['wall_seconds']} s):"
        f" {o['ops']} operations ({kinds});"
        f" {o['comparisons']} comparisons with a clean build ({o['tables_compared']} tables"
        f" compared), {o['rule_checks']} checks of the other rules (isolation, select,"
        f" promote, sink, gc); runs {o['runs_ok']} succeeded, {o['runs_failed']} failed;"
        f" kills {o['kills']} landed of {o['kill_attempts']};"
        f" **{o['mismatches']} mismatches** ({o['distinct_mismatches']} distinct).",
    ]
    for m in o["mismatch_details"]:
        ops = m.get("minimal")
        lines += ["", f"- `[{m['rule']}] env={m['env']} node={m['node']}`: {m['detail']}"
                  f" (seed {m['seed']}, step {m['step']}, seen {m['count']} times)"]
        if ops:
            lines.append("  minimal sequence: " + " \u2192 ".join(
                "`" + " ".join(f"{k}={v}" for k, v in op.items()) + "`" for op in ops))
    return lines


if __name__ == "__main__":
    main()
