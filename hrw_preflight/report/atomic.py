"""Atomic file writes and file hashes for run bundles.

A report file is written to a temporary file in the same folder, flushed to disk and then
renamed over its final name, so a crash or Ctrl-C leaves either the old state or the whole
new file, never a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20
# Owner read-write, group read, nothing for others: a report quotes what hosts hold.
REPORT_MODE = 0o640


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    Exists because a reader (``verify``, a CI job archiving the folder) must never see a
    truncated report that looks complete. Text is written as UTF-8.
    """
    return write_atomic_chunks(path, (data,))


def write_atomic_chunks(path: str | Path, chunks: Iterable[str | bytes]) -> Path:
    """Write the concatenation of ``chunks`` to ``path`` atomically and return the path.

    Exists so a large document (a 10,000-host record) goes to disk piece by piece instead
    of being held whole, as text and again as bytes, in memory.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, REPORT_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)
    return target


def _fsync_dir(folder: Path) -> None:
    # The rename itself is only durable once the folder's entry is on disk.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path: str | Path) -> str:
    """Return the hex SHA-256 of a file's bytes (read in chunks, so large reports are fine)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256sums(folder: str | Path, names: list[str]) -> str:
    """Return ``sha256sum``-format lines (``<hex>  <name>``) for ``names`` inside ``folder``.

    Exists so a bundle can be checked with plain ``sha256sum -c SHA256SUMS`` as well as
    with ``python -m hrw_preflight verify``.
    """
    base = Path(folder)
    return "".join(f"{sha256_file(base / name)}  {name}\n" for name in names)
