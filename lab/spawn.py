"""Starting the lab's long-running processes in the background, each with its own log."""

from __future__ import annotations

import subprocess
from pathlib import Path


def spawn_logged(argv: list[str], log_path: Path, cwd: Path | None = None) -> int:
    """Start ``argv`` detached (own session, no stdin), output appended to ``log_path``;
    return its pid. The lab records the pid so that lab-down can end exactly what it started."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid
