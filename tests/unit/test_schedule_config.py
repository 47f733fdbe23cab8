"""The scheduling keys of headwater.toml and sources/*.toml: validation and fingerprints."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.errors import ProjectError
from headwater.load.loader import load_project
from headwater.testing import write_project

SOURCE = 'type = "files"\npath = "data/*.csv"\n'


def load(tmp_path: Path, config: str = "", source_extra: str = "") -> object:
    root = write_project(tmp_path / "p", {
        "data/a.csv": "id\n1\n",
        "sources/vendor.toml": SOURCE + source_extra,
        "transforms/t.sql": "SELECT * FROM vendor\n",
    }, config=config)
    return load_project(root)


def error(tmp_path: Path, config: str = "", source_extra: str = "") -> ProjectError:
    with pytest.raises(ProjectError) as err:
        load(tmp_path, config, source_extra)
    return err.value


def test_full_schedule_config_loads(tmp_path: Path) -> None:
    loaded = load(tmp_path, config="""
timezone = "America/Los_Angeles"
retries = 2
retry_delay = "1m"

[[schedules]]
name = "hourly"
cron = "5 * * * *"
select = "tag:hourly"
on_overlap = "skip"

[[schedules]]
cron = "@daily"
timezone = "Europe/Berlin"
retry_delay = 30

[node_retries.t]
retries = 5

[notify]
url = "https://hooks.example.com/${HOOK}"
on = ["failure", "success"]
""", source_extra='tags = ["hourly"]\nwindow = "22:00-02:00"\ntrigger = "new_data"\n'
                     'poll_interval = "5m"\n')
    cfg = loaded.config  # type: ignore[attr-defined]
    assert cfg.retry_delay == 60.0 and cfg.retries == 2
    assert [s.cron for s in cfg.schedules] == ["5 * * * *", "@daily"]
    assert cfg.schedules[1].retry_delay == 30
    assert cfg.node_retries["t"].retries == 5
    assert cfg.notify.on == ["failure", "success"]
    src = loaded.nodes["vendor"].config  # type: ignore[attr-defined]
    assert (src.window, src.window_timezone, src.trigger, src.poll_interval) == (
        "22:00-02:00", None, "new_data", 300.0)


def test_bad_cron_names_file_line_and_fix(tmp_path: Path) -> None:
    err = error(tmp_path, config='[[schedules]]\ncron = "0 2 * *"\n')
    text = err.render()
    assert "headwater.toml:3" in text
    assert "invalid value for 'schedules.0.cron'" in text
    assert "has 4 fields, expected 5 (minute hour day-of-month month day-of-week)" in text


def test_unknown_schedule_key_lists_allowed(tmp_path: Path) -> None:
    err = error(tmp_path, config='[[schedules]]\ncron = "0 2 * * *"\nselct = "a"\n')
    assert "unknown key 'schedules.0.selct'" in err.message
    assert "did you mean 'select'?" in (err.hint or "")


def test_bad_window_points_at_the_value(tmp_path: Path) -> None:
    err = error(tmp_path, source_extra='window = "2am-5am"\n')
    assert err.path is not None and err.path.name == "vendor.toml"
    assert err.line == 3
    assert "cannot read window '2am-5am'" in err.message
    assert '"HH:MM-HH:MM"' in err.message


def test_bad_zone_suggests_the_name(tmp_path: Path) -> None:
    err = error(tmp_path, source_extra='window = "02:00-05:00"\n'
                'window_timezone = "America/Los Angeles"\n')
    assert "unknown time zone 'America/Los Angeles'" in err.message
    assert "America/Los_Angeles" in err.message


def test_bad_trigger_and_poll_interval(tmp_path: Path) -> None:
    assert "trigger" in error(tmp_path, source_extra='trigger = "sometimes"\n').message
    err = error(tmp_path, source_extra='trigger = "new_data"\npoll_interval = "often"\n')
    assert "cannot read duration 'often'" in err.message


def test_scheduling_keys_do_not_change_fingerprints(tmp_path: Path) -> None:
    plain = load(tmp_path / "a")
    windowed = load(tmp_path / "b", source_extra='window = "02:00-05:00"\n'
                    'window_timezone = "America/Los_Angeles"\ntrigger = "new_data"\n')
    assert plain.nodes["vendor"].code_fp == windowed.nodes["vendor"].code_fp  # type: ignore[attr-defined]
