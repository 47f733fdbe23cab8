"""The ``headwater`` command: parses arguments, calls the Python API, formats output.

Errors become one message on stderr and a non-zero exit code here, and only
here.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

class _Duration(click.ParamType[float]):
    """A duration on the command line: seconds (``90``) or ``30s``, ``10m``, ``1h``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        from headwater.core.timeutil import parse_seconds

        try:
            return parse_seconds(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = _Duration()

SELECT_HELP = (
    "Nodes to include: NAME, +NAME (with upstream), NAME+ (with downstream), tag:T, "
    "kind:K; several separated by commas or spaces."
)


def dump_json(data: Any) -> str:
    """Indented for a person at a terminal; compact (and much faster) for programs."""
    if sys.stdout.isatty():
        return json.dumps(data, indent=2, default=str)
    return json.dumps(data, default=str)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def handle_errors(func: F) -> F:
    """Turn Headwater errors into a message and an exit code; never a bare traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from headwater.errors import HeadwaterError, disk_full

        def fail(exc: HeadwaterError) -> None:
            click.echo(click.style("error: ", fg="red", bold=True) + exc.render(), err=True)
            if kwargs.get("as_json"):  # --json: a document on stdout for every outcome
                click.echo(dump_json(_error_json(exc)))
            sys.exit(exc.exit_code)

        try:
            return func(*args, **kwargs)
        except HeadwaterError as exc:
            fail(exc)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            full = disk_full(exc)  # the lock, the state store, the warehouse, a page
            if full is not None:
                fail(full)
            if os.environ.get("HEADWATER_DEBUG"):
                raise
            click.echo(
                click.style("internal error: ", fg="red", bold=True)
                + f"{type(exc).__name__}: {exc}\n"
                "hint: this is a bug in Headwater; rerun with HEADWATER_DEBUG=1 for a traceback",
                err=True,
            )
            sys.exit(70)

    return wrapper  # type: ignore[return-value]


def _error_json(exc: Any) -> dict[str, Any]:
    """What ``--json`` prints when a command fails before it has a result of its own."""
    return {"status": "error", "error": {
        "type": type(exc).__name__, "message": exc.message,
        "path": exc.location.split(":")[0] if exc.location else None,
        "line": exc.line, "column": exc.column, "hint": exc.hint,
        "exit_code": exc.exit_code}}


def project_option(func: F) -> F:
    return click.option(
        "--project",
        "-p",
        "project_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        envvar="HEADWATER_PROJECT",
        help="Project folder (default: the current folder or the nearest parent with "
        "headwater.toml).",
    )(func)


def env_option(func: F) -> F:
    return click.option(
        "--env", default="prod", show_default=True, help="Environment to read or publish."
    )(func)


def select_options(func: F) -> F:
    func = click.option("--exclude", "-x", multiple=True, help="Nodes to leave out (same syntax).")(
        func
    )
    return click.option("--select", "-s", multiple=True, help=SELECT_HELP)(func)


def _project(project_dir: Path | None, env: str = "prod") -> Any:
    from headwater.api import Project

    return Project(project_dir or Path.cwd(), env=env)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="headwater")
def main() -> None:
    """Headwater: data pipelines from plain SQL and Python.

    Write SELECTs in transforms/*.sql and functions in transforms/*.py; Headwater
    derives the DAG, runs only what changed on embedded DuckDB and publishes
    each table atomically.
    """
    from headwater.core import secrets

    secrets.protect_std_streams()  # nothing printed shows a secret (headwater.core.secrets)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--rows", default=100_000, show_default=True, help="Telemetry rows to generate.")
@click.option("--seed", default=42, show_default=True, help="Random seed for the demo data.")
@click.option("--force", is_flag=True, help="Write into a non-empty folder.")
@handle_errors
def init(directory: Path, rows: int, seed: int, force: bool) -> None:
    """Create a project in DIRECTORY with a runnable loyalty-and-payments example."""
    from headwater.scaffold import init_project

    files = init_project(directory, rows=rows, seed=seed, force=force)
    console = _console()
    console.print(f"[green]created[/] {directory} ({len(files)} files, {rows:,} telemetry rows)")
    console.print(f"next: [bold]cd {directory} && headwater run[/]")


@main.command()
@project_option
@select_options
@env_option
@click.option("--full-refresh", is_flag=True, help="Rebuild the selected nodes even if unchanged.")
@click.option("--threads", "-t", type=click.IntRange(min=1), default=None,
              help="Parallel builds (default: cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another run holds the project.")
@click.option("--wait-timeout", type=DURATION, default=None, metavar="DURATION",
              help="Give up (exit 3) if the project is still busy after this long, e.g. 30s, "
              "10m (default: wait for the run in progress to end).")
@click.option("--ignore-windows", is_flag=True,
              help="Read sources even outside their availability windows.")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default=None,
              help="Run on this engine instead of headwater.toml's `engine`.")
@handle_errors
def run(
    project_dir: Path | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    env: str,
    full_refresh: bool,
    threads: int | None,
    as_json: bool,
    no_wait: bool,
    wait_timeout: float | None,
    ignore_windows: bool,
    engine: str | None,
) -> None:
    """Build what changed: ingest sources, run transforms, write sinks.

    A completed run leaves every table the environment publishes equal to a clean
    build of the current code and data; it never changes what another environment
    shows. With --select only the selected nodes change, and the summary names the
    nodes downstream that are now behind. Exit status 0 only when every selected
    node succeeded.

    A node may build for as long as its timeout allows: `node_timeout = "30m"` in
    headwater.toml, `-- @timeout: 5s` in a SQL file's leading comment, `@timeout: 5s`
    in a Python transform's docstring, `node_timeout = "10m"` in a source or sink TOML.
    A node past it fails ("timed out after 5s"), nothing of it is published, its
    downstream is skipped and the run goes on.
    """
    from headwater.cli.console import RichReporter, print_failures, print_summary

    project = _project(project_dir, env)
    project.engine = engine
    err = _console(stderr=True)
    reporter = None if as_json else RichReporter(_console())

    def waiting(what: str) -> None:
        err.print(f"[yellow]{what}[/] ...", highlight=False)

    try:
        result = project.run(
            select or None,
            exclude=exclude or None,
            full_refresh=full_refresh,
            threads=threads,
            reporter=reporter,
            wait=not no_wait,
            wait_timeout=wait_timeout,
            on_wait=waiting,
            ignore_windows=ignore_windows,
        )
    finally:
        if reporter is not None:
            reporter.stop()
    if as_json:
        click.echo(dump_json(result.to_json()))
    else:
        print_summary(_console(), result)
    print_failures(err, result)
    sys.exit(0 if result.ok else 1)


@main.command()
@click.argument("node")
@click.option("--start", required=True, help="First date to recompute (YYYY-MM-DD).")
@click.option("--end", required=True, help="Date to stop before (YYYY-MM-DD, exclusive).")
@project_option
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@handle_errors
def backfill(
    node: str, start: str, end: str, project_dir: Path | None, env: str, as_json: bool
) -> None:
    """Recompute NODE's windows from START up to END, then what depends on it."""
    from headwater.cli.console import RichReporter, print_failures, print_summary

    reporter = None if as_json else RichReporter(_console())
    try:
        result = _project(project_dir, env).backfill(node, start, end, reporter=reporter)
    finally:
        if reporter is not None:
            reporter.stop()
    if as_json:
        click.echo(dump_json(result.to_json()))
    else:
        print_summary(_console(), result)
    print_failures(_console(stderr=True), result)
    sys.exit(0 if result.ok else 1)


@main.command()
@project_option
@select_options
@env_option
@click.option("--full-refresh", is_flag=True, help="Plan as if the selection were forced.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@handle_errors
def plan(
    project_dir: Path | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    env: str,
    full_refresh: bool,
    as_json: bool,
) -> None:
    """Show what a run would do, in order, and why, without running anything.

    Exit status 1 when a source cannot be read (its error is printed; a run would build
    everything that does not depend on it), 2 when the project itself is wrong.
    """
    from headwater.cli.console import print_plan

    project = _project(project_dir, env)
    result = project.plan(select or None, exclude=exclude or None, full_refresh=full_refresh,
                          preview=True)
    if as_json:
        click.echo(dump_json(result.to_json()))
    else:
        print_plan(_console(), result)
    for text in result.source_errors.values():
        click.echo(click.style("error: ", fg="red", bold=True) + text, err=True)
    sys.exit(1 if result.source_errors else 0)


@main.command("test")
@project_option
@select_options
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@handle_errors
def test_cmd(
    project_dir: Path | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    env: str,
    as_json: bool,
) -> None:
    """Run checks against the published tables (without building anything).

    Exit status 1 when an error-severity check fails.
    """
    from headwater.cli.console import print_checks

    results = _project(project_dir, env).test(select or None, exclude=exclude or None)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2, default=str))
    else:
        print_checks(_console(), results)
    sys.exit(1 if any(r.blocking for r in results) else 0)


@main.command()
@project_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "dot", "json"]),
    default="text",
    show_default=True,
)
@handle_errors
def dag(project_dir: Path | None, fmt: str) -> None:
    """Print the project's topology (text, Mermaid, Graphviz dot or JSON)."""
    from headwater.cli.dag_format import FORMATS

    project = _project(project_dir)
    click.echo(FORMATS[fmt](project.loaded))


@main.command()
@click.argument("node")
@project_option
@env_option
@click.option("--limit", "-n", default=20, show_default=True, help="Rows to show.")
@handle_errors
def show(node: str, project_dir: Path | None, env: str, limit: int) -> None:
    """Preview the rows of a published table."""
    from headwater.cli.formatting import print_table

    project = _project(project_dir, env)
    print_table(_console(), project.table(node, limit=limit), title=node)


@main.command()
@click.argument("sql")
@project_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option("--limit", "-n", default=None, type=int, help="At most this many rows.")
@handle_errors
def query(sql: str, project_dir: Path | None, fmt: str, limit: int | None) -> None:
    """Run a read-only SQL query against the published tables."""
    project = _project(project_dir)
    data = project.query(sql, limit=limit)
    from headwater.cli import formatting

    if fmt == "json":
        click.echo(formatting.to_json(data))
    elif fmt == "csv":
        click.echo(formatting.to_csv(data))
    else:
        formatting.print_table(_console(), data)


@main.command()
@click.argument("env_a")
@click.argument("env_b", default="prod")
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@handle_errors
def diff(env_a: str, env_b: str, project_dir: Path | None, as_json: bool) -> None:
    """Compare two environments per node: schema and row counts (ENV_B defaults to prod)."""
    from headwater.cli.console import print_diff

    diffs = _project(project_dir).diff(env_a, env_b)
    if as_json:
        click.echo(json.dumps([d.to_json() for d in diffs], indent=2))
    else:
        print_diff(_console(), diffs, env_a, env_b)


@main.command()
@click.argument("env")
@click.option("--to", "target", default="prod", show_default=True, help="Environment to update.")
@project_option
@handle_errors
def promote(env: str, target: str, project_dir: Path | None) -> None:
    """Point TARGET (prod) at ENV's tables, without recomputing anything."""
    moved = _project(project_dir).promote(env, to=target)
    _console().print(f"promoted {len(moved)} tables from {env} to {target}"
                     + (f": {', '.join(moved)}" if moved else ""))


@main.command()
@click.option("--keep-versions", default=1, show_default=True,
              help="Unused versions to keep per node, for instant reverts.")
@click.option("--dry-run", is_flag=True, help="List what would be dropped.")
@project_option
@handle_errors
def gc(keep_versions: int, dry_run: bool, project_dir: Path | None) -> None:
    """Drop physical tables no environment points to.

    Also drops old versions (snapshots) of tables that change in place and the rows
    only they showed, keeping --keep-versions unused ones per node.
    """
    dropped = _project(project_dir).gc(keep_versions=keep_versions, dry_run=dry_run)
    verb = "would drop" if dry_run else "dropped"
    _console().print(f"{verb} {len(dropped)} physical tables")
    for name in dropped:
        _console().print(f"  {name}")



@main.command()
@project_option
@env_option
@click.option("--dry-run", is_flag=True,
              help="Print the next fire times and which windows are open, then exit.")
@click.option("--count", default=3, show_default=True, help="Fire times per schedule (--dry-run).")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print JSON.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="One line per run and node event, as text or JSON lines.")
@click.option("--threads", "-t", type=int, default=None, help="Parallel builds (default: cores).")
@handle_errors
def schedule(
    project_dir: Path | None,
    env: str,
    dry_run: bool,
    count: int,
    as_json: bool,
    log_format: str,
    threads: int | None,
) -> None:
    """Run the project on its schedules until stopped (SIGTERM/Ctrl-C stop cleanly).

    Fires at the cron times of [[schedules]] in headwater.toml, defers sources
    outside their window, polls trigger = "new_data" sources, retries failed
    nodes and notifies the [notify] webhook when a failure outlives its retries.
    """
    from headwater.schedule.scheduler import Scheduler, SchedulerError, format_dry_run

    project = _project(project_dir, env)
    scheduler = Scheduler(project, env=env, threads=threads, check_env=not dry_run,
                          log_format="json" if log_format == "json" else "text")
    if dry_run:
        info = scheduler.dry_run(count=count)
        click.echo(json.dumps(info, indent=2) if as_json else format_dry_run(info))
        return
    if not scheduler.schedules and not scheduler.sensors:
        raise SchedulerError(
            "nothing to schedule: no [[schedules]] and no source with trigger = \"new_data\"",
            path=project.root / "headwater.toml",
            hint='add e.g. [[schedules]] cron = "0 2 * * *" to headwater.toml',
        )
    scheduler.install_signal_handlers()
    scheduler.serve_forever()

@main.command()
@click.argument("target", metavar="NODE[.COLUMN]")
@project_option
@env_option
@click.option("--downstream", is_flag=True,
              help="Show what depends on the column (impact analysis) instead of its origins.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@handle_errors
def lineage(target: str, project_dir: Path | None, env: str, downstream: bool, fmt: str) -> None:
    """Where NODE.COLUMN comes from, down to source columns; with --downstream, what uses it.

    With NODE alone, every column of the node and the upstream columns it is made of.
    """
    from headwater.cli.lineage_format import column_json, column_tree, node_table
    from headwater.lineage.columns import parse_target

    graph = _project(project_dir, env).lineage()
    node, column = parse_target(target, graph.project.nodes)
    if column is None:
        lin = graph.node(node)
        if fmt == "json":
            click.echo(json.dumps(lin.to_json(), indent=2))
        else:
            _console().print(node_table(lin))
        return
    if fmt == "json":
        click.echo(json.dumps(column_json(graph, node, column, downstream), indent=2))
    else:
        _console().print(column_tree(graph, node, column, downstream))


@main.command()
@project_option
@env_option
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write the site to (default: target/docs in the project).")
@handle_errors
def docs(project_dir: Path | None, env: str, out: Path | None) -> None:
    """Write the documentation site: DAG, search, a page per node with its lineage.

    The site is static and self-contained: open index.html from disk, no server needed.
    """
    index = _project(project_dir, env).docs(out)
    click.echo(str(index))

@main.group("import")
def import_() -> None:
    """Convert another tool's project into a Headwater project."""


@import_.command("dbt")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the Headwater project to.")
@click.option("--force", is_flag=True, help="Write into a non-empty folder.")
@click.option("--vars", "vars_", default=None,
              help="YAML or JSON mapping of dbt vars, overriding dbt_project.yml's.")
@click.option("--dialect", default="duckdb", show_default=True,
              help="SQL dialect the dbt models are written in.")
@click.option("--no-checks", is_flag=True, help="Do not write @check annotations.")
@click.option("--no-incremental", is_flag=True, help="Do not write @incremental annotations.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def import_dbt(
    path: Path, out: Path, force: bool, vars_: str | None, dialect: str, no_checks: bool,
    no_incremental: bool, as_json: bool,
) -> None:
    """Convert the dbt project in PATH: models, sources, seeds, tests.

    What cannot be converted (custom macros, packages, ...) is listed with file
    and line in OUT/IMPORT_REPORT.md; the rest still converts.
    """
    from headwater.importers import import_dbt as run_import
    from headwater.importers.dbt import parse_vars
    from headwater.importers.report import print_summary

    report = run_import(path, out, force=force, vars=parse_vars(vars_), dialect=dialect,
                        emit_checks=not no_checks, emit_incremental=not no_incremental)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_summary(_console(), report)


@main.command()
@project_option
@env_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but the loopback needs a token.")
@click.option("--port", default=8580, show_default=True, type=int,
              help="Port to listen on (0 picks a free one).")
@click.option("--token", envvar="HEADWATER_TOKEN", default=None, show_envvar=True,
              help="Secret every page and API request must carry (a browser enters it once on"
              " the locked page); required off the loopback, at least 16 characters there.")
@handle_errors
def serve(project_dir: Path | None, env: str, host: str, port: int, token: str | None) -> None:
    """Serve the web UI: the graph by status, nodes, lineage, runs, live progress.

    Runs started from the UI execute in this process. Ctrl-C stops the server
    (a run in progress is finished first).
    """
    from headwater.web import serve as serve_web

    def announce(url: str) -> None:
        _console(stderr=True).print(f"Headwater UI for [bold]{project.root.name}[/] at {url}"
                                    "  (Ctrl-C to stop)")

    project = _project(project_dir, env)
    serve_web(project, host=host, port=port, token=token or None, announce=announce)
