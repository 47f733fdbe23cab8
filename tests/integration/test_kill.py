"""kill -9 at random moments of a run leaves the project consistent (short CI form)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from killharness import kill_test  # noqa: E402


def test_kill_at_random_moments_then_resume(tmp_path: Path) -> None:
    report = kill_test(tmp_path, kills=8, seed=7, rows=200_000)
    assert report["problems"] == []
    assert report["kills"] >= 4  # most attempts really interrupted a run
