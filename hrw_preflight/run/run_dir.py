"""Where a run's reports go: ``reports/<run-id>/``, and ``reports/latest`` pointing at it."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path


def new_run_id(now: datetime | None = None) -> str:
    """Return a run id that sorts by start time and cannot collide between two runs."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def create_run_dir(reports: str | Path, run_id: str) -> Path:
    """Return a new, empty folder for this run; an existing one is never reused."""
    path = Path(reports) / run_id
    path.mkdir(parents=True, exist_ok=False)
    return path


def point_latest(run_dir: Path) -> None:
    """Make ``<reports>/latest`` point at ``run_dir``, replacing the old link atomically."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)
