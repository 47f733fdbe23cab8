"""The bad-input corpus (tests/fixtures/bad/, run by tests/e2e/test_bad_input.py) stays
big and broad: at least 150 cases, every category of the issue covered, every case
pinning its exit code and at least one line of the message."""

from __future__ import annotations

import re
from pathlib import Path

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad"

# category -> cases (each case belongs to at least one category)
CATEGORIES = {
    "broken SQL": r"^(sql_|not_a_select|two_statements|empty_sql|runtime_missing_column)",
    "cycles": r"^cycle_",
    "unknown or duplicate names": r"^(unknown_table|sink_from|python_unknown_param"
                                  r"|custom_check_unknown|duplicate_"
                          r"|check_relationships_unknown|columns_unknown)",
    "bad TOML": r"^(toml_|invalid_toml_)",
    "wrong types": r"^(wrong_type_|invalid_value_|unknown_engine|unknown_file_format)",
    "unknown keys": r"^(unknown_key_|mistyped_key_|unknown_annotation|unknown_source_type"
                    r"|missing_)",
    "missing env vars": r"^missing_env_",
    "unreadable files": r"(_not_utf8|_is_a_folder|no_headwater_toml)$",
    "malformed data": r"^(csv_|ndjson_|parquet_|gzip_|json_|glob_)",
    "schema drift": r"^schema_drift_",
    "absurd values": r"^(threads_zero|retries_negative|port_out_of_range|cron_|timezone_|window_"
                     r"|lookback_|incremental_|chunk_rows_zero|memory_limit_|bad_materialized"
                     r"|poll_interval_|retry_delay_)",
    "checks": r"^check_",
    "python": r"^python_",
    "selections and commands": r"^(select_|backfill_|show_|lineage_|dag_)",
    "sinks": r"^sink_",
    "node names": r"^name_",
    "connector settings": r"^(postgres_|http_)",
    "URLs": r"_without_scheme$|^openlineage_",
    "scheduling": r"^(schedule_|node_retries_)",
    "read-only queries": r"^query_",
    "timeouts": r"^timeout_",
    "secrets": r"^(secret_|secrets_)",
}


def cases() -> list[str]:
    return sorted(p.name for p in BAD.iterdir() if (p / "expected.txt").is_file())


def test_at_least_150_cases_in_every_category() -> None:
    names = cases()
    assert len(names) >= 150, len(names)
    for category, pattern in CATEGORIES.items():
        members = [n for n in names if re.search(pattern, n)]
        assert len(members) >= 2 or category == "missing env vars" and members, category
    uncategorised = [n for n in names if not any(re.search(p, n) for p in CATEGORIES.values())]
    assert not uncategorised, uncategorised


def test_every_case_pins_its_exit_code_and_message() -> None:
    for name in cases():
        text = (BAD / name / "expected.txt").read_text(encoding="utf-8")
        assert re.search(r"^# exit: \d+$", text, re.MULTILINE), name
        expected = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(("#", "!"))]
        assert expected, name
