"""What the scheduler remembers between restarts: ``.headwater/schedule.json``.

Only what catching up needs: when each schedule last fired and the data
fingerprint each ``new_data`` sensor last acted on. Written atomically
(temporary file, then rename), so a crash leaves the old or the new version.
The run history itself lives in the state store, like every other run's.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
VERSION = 1


@dataclass
class Ledger:
    path: Path | None
    last_fire: dict[str, datetime] = field(default_factory=dict)
    sensor_seen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Ledger:
        if path is None or not path.exists():
            return cls(path)
        try:
            data: dict[str, Any] = json.loads(path.read_text("utf-8"))
            fires = {k: datetime.fromisoformat(v) for k, v in data.get("last_fire", {}).items()}
            return cls(path, fires, dict(data.get("sensor_seen", {})))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            # losing it costs at most one catch-up run too few: never fatal
            log.warning("ignoring unreadable scheduler memory %s: %s", path, exc)
            return cls(path)

    def save(self) -> None:
        if self.path is None:
            return
        data = {
            "version": VERSION,
            "last_fire": {k: v.isoformat() for k, v in sorted(self.last_fire.items())},
            "sensor_seen": dict(sorted(self.sensor_seen.items())),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
